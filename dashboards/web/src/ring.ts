/** A small ring buffer of numbers: a tile's sparkline keeps its device's last `size` values. */
export class Ring {
  private readonly buf: Float64Array;
  private n = 0;
  private head = 0;
  constructor(size = 60) {
    this.buf = new Float64Array(size);
  }
  push(v: number): void {
    this.buf[this.head] = v;
    this.head = (this.head + 1) % this.buf.length;
    if (this.n < this.buf.length) this.n++;
  }
  get length(): number {
    return this.n;
  }
  /** Oldest first. */
  values(): number[] {
    const out: number[] = [];
    const start = (this.head - this.n + this.buf.length) % this.buf.length;
    for (let i = 0; i < this.n; i++) out.push(this.buf[(start + i) % this.buf.length]!);
    return out;
  }
}
