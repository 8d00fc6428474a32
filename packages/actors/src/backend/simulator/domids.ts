/** Domids of one host: start at 1, each new domain gets the next number, never reused (§8.1). */
export class DomidAllocator {
  private last: number;
  constructor(lastUsed = 0) {
    this.last = lastUsed;
  }
  /** Remembers a domid seen in the log (restart: the counter resumes after the largest). */
  observe(domid: number): void {
    if (domid > this.last) this.last = domid;
  }
  next(): number {
    return ++this.last;
  }
}
