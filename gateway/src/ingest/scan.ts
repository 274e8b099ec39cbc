import type { IngestConfig } from '../config/schema.js';
import type { MetricValue, Reading } from '../core/types.js';
import type { KindDef, MetricDef } from './catalogue.js';
import { RFC3339, type TopicInfo } from './decode.js';
import { fieldKey, type FieldKey, type LineBuilder } from './line-builder.js';

/** A catalogue metric as the scanner matches it: its name's bytes and its line-protocol keys. */
interface ScanMetric {
  name: string;
  bytes: Buffer;
  def: MetricDef;
  key: FieldKey;
  /** The scan that last saw it: a second sighting in one message is a duplicate key. */
  seen: number;
  /** Its place in the kind's table. */
  index: number;
}

const QUOTE = 0x22;
const COMMA = 0x2c;
const COLON = 0x3a;
const LBRACE = 0x7b;
const RBRACE = 0x7d;
const MINUS = 0x2d;
const DOT = 0x2e;
const ZERO = 0x30;
const NINE = 0x39;
const BACKSLASH = 0x5c;

const VALUES = Buffer.from('values');

/** Exact powers of ten: a mantissa below 2^53 divided by one of these is correctly rounded. */
const POW10 = Array.from({ length: 16 }, (_, k) => 10 ** k);
/** At most this many digits in a number: its mantissa stays exact and its text is its shortest form. */
const MAX_DIGITS = 15;

const isWs = (c: number | undefined): boolean => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;

/**
 * The common payload read straight from its bytes: one JSON object of catalogue metrics with plain
 * numbers and booleans (flat, or under `values`), `ts` as epoch milliseconds or an RFC 3339 string.
 * It produces exactly the reading and line the general path (JSON.parse, then PayloadValidator)
 * would, and copies each number's text into the line instead of formatting the parsed value.
 *
 * Anything else, valid or not, returns null and takes the general path, which accepts it or gives
 * the reason: escapes, extra metrics, exponents, more than 15 digits, duplicate keys, a value out
 * of range or of the wrong type, a timestamp out of bounds. So every rejection keeps its one
 * source, and this reader only has to be right about what it accepts.
 */
export class PayloadScanner {
  private readonly tables = new Map<KindDef, ScanMetric[]>();
  private stamp = 0;
  /** Index in the kind's table of the metric expected next. */
  private hint = 0;
  /** After a successful decode: the metric values in the reading. */
  count = 0;
  /** Set by num(): the value, and its shortest text as `[intStart, intEnd)` plus fraction `[fracStart, fracEnd)`. */
  private value = 0;
  private neg = false;
  private intStart = 0;
  private intEnd = 0;
  private fracStart = 0;
  private fracEnd = 0;
  /** Set by key(): the last key read is `p[keyStart, keyStop)`. */
  private keyStart = 0;
  private keyStop = 0;

  constructor(private readonly cfg: IngestConfig) {}

  decode(info: TopicInfo, p: Buffer, now: number, line: LineBuilder): Reading | null {
    const table = this.tableOf(info.def);
    const stamp = ++this.stamp;
    this.hint = 0;
    const len = p.length;
    let i = skipWs(p, 0);
    if (p[i] !== LBRACE) return null;
    i = skipWs(p, i + 1);
    line.start(info.prefix);
    const fields: Record<string, MetricValue> = {};
    let ts = now;
    let hasTs = false;
    /** 0: neither form yet; 1: flat (metrics at the top); 2: nested (under `values`). */
    let form = 0;
    let n = 0;
    for (;;) {
      i = this.key(p, i, len);
      if (i < 0) return null;
      const ks = this.keyStart;
      const j = this.keyStop;
      const kl = j - ks;
      if (kl === 2 && p[ks] === 0x74 && p[ks + 1] === 0x73) {
        // "ts"
        if (hasTs) return null;
        hasTs = true;
        if (p[i] === QUOTE) {
          let e = i + 1;
          while (e < len && p[e] !== QUOTE && p[e] !== BACKSLASH) e++;
          if (p[e] !== QUOTE) return null;
          const s = p.toString('latin1', i + 1, e);
          if (!RFC3339.test(s)) return null;
          ts = Date.parse(s);
          if (!Number.isFinite(ts)) return null;
          i = e + 1;
        } else {
          i = this.num(p, i);
          if (i < 0 || this.neg || this.fracEnd > this.fracStart) return null;
          ts = this.value;
        }
      } else if (kl === 6 && equalAt(p, ks, VALUES)) {
        if (form !== 0 || p[i] !== LBRACE) return null;
        form = 2;
        i = skipWs(p, i + 1);
        for (;;) {
          i = this.key(p, i, len);
          if (i < 0) return null;
          i = this.member(table, p, this.keyStart, this.keyStop, i, stamp, ++n, fields, line);
          if (i < 0) return null;
          i = skipWs(p, i);
          if (p[i] === COMMA) i = skipWs(p, i + 1);
          else if (p[i] === RBRACE) break;
          else return null;
        }
        i++;
      } else {
        if (form === 2) return null;
        form = 1;
        i = this.member(table, p, ks, j, i, stamp, ++n, fields, line);
        if (i < 0) return null;
      }
      i = skipWs(p, i);
      if (p[i] === COMMA) i = skipWs(p, i + 1);
      else if (p[i] === RBRACE) break;
      else return null;
    }
    if (skipWs(p, i + 1) !== len || n === 0) return null;
    if (ts > now + this.cfg.maxFutureMs || ts < now - this.cfg.maxAgeMs) return null;
    this.count = n;
    return { site: info.site, kind: info.kind, device: info.device, ts, fields };
  }

  /**
   * A key and its colon at `i`: the key is `p[keyStart, keyStop)`, and the index of the value
   * (whitespace skipped) is returned; -1 for anything else.
   */
  private key(p: Buffer, i: number, len: number): number {
    if (p[i] !== QUOTE) return -1;
    const ks = i + 1;
    const ke = keyEnd(p, ks, len);
    if (ke < 0) return -1;
    i = skipWs(p, ke + 1);
    if (p[i] !== COLON) return -1;
    this.keyStart = ks;
    this.keyStop = ke;
    return skipWs(p, i + 1);
  }

  /**
   * One metric `name: value`, the name at `p[ks, ke)` and the value at `i`: checked, stored in
   * `fields` and written to the line. Returns the index after the value, or -1.
   */
  private member(
    table: ScanMetric[],
    p: Buffer,
    ks: number,
    ke: number,
    i: number,
    stamp: number,
    n: number,
    fields: Record<string, MetricValue>,
    line: LineBuilder,
  ): number {
    if (n > this.cfg.maxFields) return -1;
    // A device sends its metrics in the same order each time, mostly the catalogue's: the one
    // after the last match is tried first.
    const kl = ke - ks;
    let m: ScanMetric | undefined = table[this.hint];
    if (m === undefined || m.bytes.length !== kl || !equalAt(p, ks, m.bytes)) m = find(table, p, ks, kl);
    if (m === undefined || m.seen === stamp) return -1;
    m.seen = stamp;
    this.hint = m.index + 1;
    line.key(m.key, n === 1);
    const c = p[i];
    if (m.def.type === 'boolean') {
      let v: boolean;
      let end: number;
      if (c === 0x74 && p[i + 1] === 0x72 && p[i + 2] === 0x75 && p[i + 3] === 0x65) {
        v = true;
        end = i + 4;
      } else if (
        c === 0x66 &&
        p[i + 1] === 0x61 &&
        p[i + 2] === 0x6c &&
        p[i + 3] === 0x73 &&
        p[i + 4] === 0x65
      ) {
        v = false;
        end = i + 5;
      } else if ((c === ZERO || c === ZERO + 1) && !isDigitOrNumberPart(p[i + 1])) {
        v = c === ZERO + 1;
        end = i + 1;
      } else return -1;
      fields[m.name] = v;
      line.bool(v);
      return end;
    }
    const end = this.num(p, i);
    if (end < 0) return -1;
    const v = this.value;
    const d = m.def;
    if ((d.min !== undefined && v < d.min) || (d.max !== undefined && v > d.max)) return -1;
    fields[m.name] = v;
    if (v === 0) {
      line.byte(ZERO);
    } else {
      if (this.neg) line.byte(MINUS);
      line.bytes(p, this.intStart, this.intEnd);
      if (this.fracEnd > this.fracStart) {
        line.byte(DOT);
        line.bytes(p, this.fracStart, this.fracEnd);
      }
    }
    return end;
  }

  /**
   * A JSON number at `i` with at most 15 digits and no exponent: sets `value` (what JSON.parse
   * gives: the digits as an exact integer over an exact power of ten, one correctly rounded
   * division) and the text String(value) would write (trailing zeros of the fraction dropped).
   * Returns the index after it, or -1 for anything else, including values below 1e-6, which
   * String() writes with an exponent.
   */
  private num(p: Buffer, i: number): number {
    let j = i;
    const neg = p[j] === MINUS;
    if (neg) j++;
    const is = j;
    let c = p[j];
    if (c === ZERO) j++;
    else if (c !== undefined && c > ZERO && c <= NINE) {
      do j++;
      while ((c = p[j]) !== undefined && c >= ZERO && c <= NINE);
    } else return -1;
    const ie = j;
    let m = 0;
    for (let k = is; k < ie; k++) m = m * 10 + (p[k]! - ZERO);
    let fs = j;
    let fe = j;
    if (p[j] === DOT) {
      fs = ++j;
      while ((c = p[j]) !== undefined && c >= ZERO && c <= NINE) {
        m = m * 10 + (c - ZERO);
        j++;
      }
      fe = j;
      if (fe === fs) return -1;
    }
    c = p[j];
    if (c === 0x65 || c === 0x45 || ie - is + (fe - fs) > MAX_DIGITS) return -1;
    const value = fe > fs ? m / POW10[fe - fs]! : m;
    let last = fe;
    while (last > fs && p[last - 1] === ZERO) last--;
    if (value !== 0 && ie - is === 1 && p[is] === ZERO) {
      // 0.000000x: below 1e-6 String() switches to an exponent.
      let z = fs;
      while (z < last && p[z] === ZERO) z++;
      if (z - fs >= 6) return -1;
    }
    this.value = neg ? -value : value;
    this.neg = neg;
    this.intStart = is;
    this.intEnd = ie;
    this.fracStart = fs;
    this.fracEnd = last;
    return j;
  }

  private tableOf(def: KindDef): ScanMetric[] {
    let t = this.tables.get(def);
    if (t === undefined) {
      t = [];
      for (const [name, d] of Object.entries(def.metrics)) {
        // Only names JSON writes without escapes are matched byte for byte; others take the general path.
        if (!/^[\x20-\x7e]+$/.test(name) || name.includes('"') || name.includes('\\')) continue;
        t.push({
          name,
          bytes: Buffer.from(name, 'latin1'),
          def: d,
          key: fieldKey(name),
          seen: 0,
          index: t.length,
        });
      }
      this.tables.set(def, t);
    }
    return t;
  }
}

function skipWs(p: Buffer, i: number): number {
  let c = p[i];
  // Every byte a token starts with is above 0x20: one comparison when there is no whitespace.
  while (c !== undefined && c <= 0x20) {
    if (!isWs(c)) return i;
    c = p[++i];
  }
  return i;
}

/** After a 0 or 1 that stands for a boolean, a digit, `.` or an exponent means a longer number. */
function isDigitOrNumberPart(c: number | undefined): boolean {
  return c !== undefined && ((c >= ZERO && c <= NINE) || c === DOT || c === 0x65 || c === 0x45);
}

/**
 * The index of the quote that closes the key starting at `ks`; -1 for a key left to JSON.parse
 * (an escape, a control or non-ASCII byte, no closing quote).
 */
function keyEnd(p: Buffer, ks: number, len: number): number {
  for (let j = ks; j < len; j++) {
    const c = p[j]!;
    if (c === QUOTE) return j;
    if (c === BACKSLASH || c < 0x20 || c >= 0x80) return -1;
  }
  return -1;
}

/** Whether `p` holds the bytes of `b` at `at`. */
function equalAt(p: Buffer, at: number, b: Buffer): boolean {
  for (let k = 0; k < b.length; k++) if (b[k] !== p[at + k]) return false;
  return true;
}

function find(table: ScanMetric[], p: Buffer, ks: number, kl: number): ScanMetric | undefined {
  for (let t = 0; t < table.length; t++) {
    const m = table[t]!;
    if (m.bytes.length === kl && equalAt(p, ks, m.bytes)) return m;
  }
  return undefined;
}
