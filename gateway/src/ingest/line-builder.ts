/** Up to this many bytes are copied in a loop rather than by Buffer#copy. */
const COPY_LOOP_MAX = 24;

const TRUE = Buffer.from('true');
const FALSE = Buffer.from('false');

/** The line-protocol keys of one field name: first after the tags, or after another field. */
export interface FieldKey {
  /** `name=` */
  first: Buffer;
  /** `,name=` */
  next: Buffer;
}

export function fieldKey(name: string): FieldKey {
  return { first: Buffer.from(name + '='), next: Buffer.from(',' + name + '=') };
}

/**
 * One line of line protocol, built as UTF-8 bytes in a buffer reused from message to message and
 * handed to the outbox as bytes. Building it as a string (pieces joined, then encoded at commit)
 * made a string per value, one per line and a copy, most of the ingest path's garbage.
 */
export class LineBuilder {
  buf = Buffer.allocUnsafe(4096);
  /** Bytes written so far. */
  at = 0;

  /** Starts a new line with its prefix (measurement and tags, with the trailing space). */
  start(prefix: Buffer): void {
    this.at = 0;
    this.bytes(prefix, 0, prefix.length);
  }

  /** Appends `src[start, end)`. */
  bytes(src: Buffer, start: number, end: number): void {
    const n = end - start;
    if (this.at + n > this.buf.length) this.grow(n);
    const buf = this.buf;
    let at = this.at;
    // A short copy (a key, a number) in a loop costs less than Buffer#copy, which also makes a
    // view object per call; from about 30 bytes on the copy routine is faster.
    if (n <= COPY_LOOP_MAX) for (let i = start; i < end; i++) buf[at++] = src[i]!;
    else at += src.copy(buf, at, start, end);
    this.at = at;
  }

  /** Appends one byte (an ASCII character code). */
  byte(c: number): void {
    if (this.at + 1 > this.buf.length) this.grow(1);
    this.buf[this.at++] = c;
  }

  /** Appends a field key: `first` for the line's first field, `next` after another one. */
  key(k: FieldKey, first: boolean): void {
    const b = first ? k.first : k.next;
    this.bytes(b, 0, b.length);
  }

  /** Appends `true` or `false`. */
  bool(v: boolean): void {
    this.bytes(v ? TRUE : FALSE, 0, v ? 4 : 5);
  }

  /** Appends a string, as UTF-8. */
  text(s: string): void {
    const n = s.length;
    if (this.at + 3 * n > this.buf.length) this.grow(3 * n);
    const buf = this.buf;
    let at = this.at;
    for (let i = 0; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c >= 0x80) {
        this.at = at + buf.write(s.slice(i), at, 'utf8');
        return;
      }
      buf[at++] = c;
    }
    this.at = at;
  }

  /** Appends a safe integer's decimal digits (as String(v) would write them). */
  int(v: number): void {
    if (this.at + 17 > this.buf.length) this.grow(17);
    const buf = this.buf;
    if (v < 0) {
      buf[this.at++] = 0x2d;
      v = -v;
    }
    let digits = 1;
    for (let p = 10; p <= v; p *= 10) digits++;
    let at = this.at + digits;
    this.at = at;
    do {
      const q = Math.floor(v / 10);
      buf[--at] = 0x30 + (v - q * 10);
      v = q;
    } while (v > 0);
  }

  private grow(n: number): void {
    const next = Buffer.allocUnsafe(Math.max(2 * this.buf.length, this.at + n));
    this.buf.copy(next, 0, 0, this.at);
    this.buf = next;
  }
}
