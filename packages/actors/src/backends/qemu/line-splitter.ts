/**
 * Splits a byte stream into lines (`\n`, with a `\r` before it dropped). Bytes are kept until the
 * line ends, so a character split across chunks decodes whole. A line longer than `maxLineBytes`
 * is not kept: `onOverflow` gets its first bytes and the rest up to the next `\n` is skipped, so a
 * peer that never ends a line cannot make us buffer without bound.
 */
export class LineSplitter {
  private parts: Buffer[] = [];
  private size = 0;
  private discarding = false;

  constructor(
    private readonly maxLineBytes: number,
    private readonly onLine: (line: string) => void,
    private readonly onOverflow: (head: string) => void,
  ) {}

  push(chunk: Buffer): void {
    let start = 0;
    while (start < chunk.length) {
      const nl = chunk.indexOf(0x0a, start);
      const end = nl === -1 ? chunk.length : nl;
      this.keep(chunk.subarray(start, end));
      if (nl === -1) return;
      this.endLine();
      start = nl + 1;
    }
  }

  /** Bytes received since the last complete line, decoded (for diagnostics at close). */
  pending(): string {
    return Buffer.concat(this.parts, this.size).toString('utf8');
  }

  private keep(piece: Buffer): void {
    if (this.discarding || piece.length === 0) return;
    if (this.size + piece.length > this.maxLineBytes) {
      const head = Buffer.concat([...this.parts, piece]).subarray(0, 200).toString('utf8');
      this.parts = [];
      this.size = 0;
      this.discarding = true;
      this.onOverflow(head);
      return;
    }
    // Copied: the socket may reuse the chunk's memory.
    this.parts.push(Buffer.from(piece));
    this.size += piece.length;
  }

  private endLine(): void {
    if (this.discarding) {
      this.discarding = false;
      return;
    }
    let line = Buffer.concat(this.parts, this.size).toString('utf8');
    this.parts = [];
    this.size = 0;
    if (line.endsWith('\r')) line = line.slice(0, -1);
    this.onLine(line);
  }
}
