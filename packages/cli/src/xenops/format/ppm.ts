import { PNG } from 'pngjs';

/** QEMU's screendump format: binary PPM (P6), 8 bits per channel. */
export interface RgbImage {
  readonly width: number;
  readonly height: number;
  /** width × height × 3 bytes, rows top to bottom. */
  readonly rgb: Buffer;
}

export class PpmError extends Error {
  override readonly name = 'PpmError';
}

/** Reads a P6 image (header tokens separated by whitespace, `#` comments allowed, maxval 255). */
export function parsePpm(data: Buffer): RgbImage {
  const tokens: string[] = [];
  let i = 0;
  while (tokens.length < 4 && i < data.length && i < 1024) {
    const c = data[i]!;
    if (c === 0x23) {
      while (i < data.length && data[i] !== 0x0a) i++;
    } else if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) {
      i++;
    } else {
      const start = i;
      while (i < data.length && ![0x20, 0x0a, 0x0d, 0x09].includes(data[i]!)) i++;
      tokens.push(data.subarray(start, i).toString('latin1'));
    }
  }
  const [magic, w, h, max] = tokens;
  if (magic !== 'P6') throw new PpmError(`not a binary PPM image (magic ${JSON.stringify(magic ?? '')})`);
  const width = Number(w);
  const height = Number(h);
  if (!Number.isInteger(width) || !Number.isInteger(height) || width <= 0 || height <= 0) throw new PpmError(`bad PPM size ${w}x${h}`);
  if (max !== '255') throw new PpmError(`unsupported PPM maxval ${max}`);
  const rgb = data.subarray(i + 1, i + 1 + width * height * 3);
  if (rgb.length < width * height * 3) throw new PpmError(`PPM data truncated: ${rgb.length} of ${width * height * 3} bytes`);
  return { width, height, rgb };
}

/** The image as a PNG file (8-bit RGB), encoded by pngjs. */
export function toPng(image: RgbImage): Buffer {
  const png = new PNG({ width: image.width, height: image.height });
  // pngjs packs from RGBA: spread the pixels, opaque.
  for (let p = 0, q = 0; p < image.width * image.height; p++, q += 3) {
    png.data[p * 4] = image.rgb[q]!;
    png.data[p * 4 + 1] = image.rgb[q + 1]!;
    png.data[p * 4 + 2] = image.rgb[q + 2]!;
    png.data[p * 4 + 3] = 255;
  }
  return PNG.sync.write(png, { colorType: 2 });
}
