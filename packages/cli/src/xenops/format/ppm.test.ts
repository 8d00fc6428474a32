import { PNG } from 'pngjs';
import { describe, expect, it } from 'vitest';
import { parsePpm, PpmError, toPng } from './ppm.js';

const ppm = (header: string, pixels: number[]) => Buffer.concat([Buffer.from(header, 'latin1'), Buffer.from(pixels)]);

describe('QEMU screendump (PPM) to PNG', () => {
  it('reads a P6 image, comments included, and writes a PNG with the same pixels', () => {
    const image = parsePpm(ppm('P6\n# made by QEMU\n2 1\n255\n', [255, 0, 0, 0, 128, 255]));
    expect(image).toMatchObject({ width: 2, height: 1 });
    const back = PNG.sync.read(toPng(image));
    expect([back.width, back.height]).toEqual([2, 1]);
    expect([...back.data]).toEqual([255, 0, 0, 255, 0, 128, 255, 255]);
  });

  it('refuses what is not a P6 image of 8-bit channels, or is cut short', () => {
    expect(() => parsePpm(Buffer.from('P3\n1 1\n255\n0 0 0\n'))).toThrow(PpmError);
    expect(() => parsePpm(ppm('P6\n0 1\n255\n', []))).toThrow('bad PPM size 0x1');
    expect(() => parsePpm(ppm('P6\n1 1\n65535\n', [0, 0, 0, 0, 0, 0]))).toThrow('unsupported PPM maxval 65535');
    expect(() => parsePpm(ppm('P6\n2 2\n255\n', [1, 2, 3]))).toThrow('PPM data truncated: 3 of 12 bytes');
  });
});
