/**
 * Rule state as numbers in one shared Float64Array, not as an object per (device, rule).
 *
 * With 10,000 devices and a dozen rules each, objects meant some 120,000 state objects, their
 * arrays and a boxed number per double field: about 2.8 KB of heap per device that every
 * garbage collection had to trace, and a dozen scattered objects fetched for every reading.
 * Here a device's states are one contiguous block of doubles, which the collector never looks
 * into. Each evaluator describes its state as a list of named fields (its layout), which also
 * gives the JSON a state is saved as: the same shape the state objects had.
 */

/** One field of a rule's state. Booleans are kept as 1/0; `ring` is a (ts, value) sample ring. */
/**
 * `volatile`: the field changes with (nearly) every reading (a latest value, a running sum, a
 * last-seen time) and is not an anchor: it is saved with the periodic save, while a change of any
 * other field (a raised severity, when a condition started holding, a day's verdict) is committed
 * with the reading that made it (ADR 0080). Rings are sample buffers, always volatile.
 */
export type FieldSpec =
  | { name: string; type: 'num'; init: number; volatile?: boolean }
  | { name: string; type: 'bool'; volatile?: boolean }
  | { name: string; type: 'nums'; n: number; volatile?: boolean }
  | { name: string; type: 'ring'; cap: number }
  | { name: string; type: 'rings'; n: number; cap: number };

/** `key`: the field's name as a JSON key, colon included. */
type Field = FieldSpec & { off: number; key: string };

/** Where each field of a state sits, relative to the state's offset, and how many doubles it takes. */
export interface Layout {
  readonly fields: readonly Field[];
  readonly size: number;
}

/** A ring takes its head, its length, then `cap` times and `cap` values. */
export const RING_HEAD = 0;
export const RING_LEN = 1;
export const RING_TS = 2;
/** Doubles a ring of `cap` samples takes. */
export const ringSize = (cap: number): number => 2 + 2 * cap;

/**
 * Fields are placed in the order given, so an evaluator's offset constants follow its list.
 * Every layout starts with `sev`, the raised severity rank, so the engine can read it for any rule.
 */
export function layoutOf(specs: readonly FieldSpec[]): Layout {
  if (specs[0]?.name !== 'sev') throw new Error('a rule state layout starts with sev');
  const fields: Field[] = [];
  let off = 0;
  for (const s of specs) {
    fields.push({ ...s, off, key: `${JSON.stringify(s.name)}:` });
    off +=
      s.type === 'num' || s.type === 'bool'
        ? 1
        : s.type === 'nums'
          ? s.n
          : s.type === 'ring'
            ? ringSize(s.cap)
            : s.n * ringSize(s.cap);
  }
  return { fields, size: off };
}

/** The offsets (from the state's start) of the doubles that are anchors: fields neither volatile nor rings. */
export function anchorOffsets(l: Layout): number[] {
  const out: number[] = [];
  for (const f of l.fields) {
    if (f.type === 'ring' || f.type === 'rings' || f.volatile === true) continue;
    const n = f.type === 'nums' ? f.n : 1;
    for (let i = 0; i < n; i++) out.push(f.off + i);
  }
  return out;
}

/** Writes a fresh state: numbers at their initial value, booleans false, arrays and rings empty (NaN). */
export function initState(st: Float64Array, o: number, l: Layout): void {
  for (const f of l.fields) {
    const at = o + f.off;
    switch (f.type) {
      case 'num':
        st[at] = f.init;
        break;
      case 'bool':
        st[at] = 0;
        break;
      case 'nums':
        st.fill(NaN, at, at + f.n);
        break;
      case 'ring':
        initRing(st, at, f.cap);
        break;
      case 'rings':
        for (let k = 0; k < f.n; k++) initRing(st, at + k * ringSize(f.cap), f.cap);
        break;
    }
  }
}

function initRing(st: Float64Array, at: number, cap: number): void {
  st[at + RING_HEAD] = 0;
  st[at + RING_LEN] = 0;
  st.fill(NaN, at + RING_TS, at + ringSize(cap));
}

/** A number as JSON writes it: NaN and infinities as null. */
export const jsonNumber = (x: number): string => (Number.isFinite(x) ? String(x) : 'null');

function jsonNumbers(st: Float64Array, at: number, n: number): string {
  let s = '[';
  for (let i = 0; i < n; i++) s += (i ? ',' : '') + jsonNumber(st[at + i]!);
  return s + ']';
}

function ringJson(st: Float64Array, at: number, cap: number): string {
  return (
    `{"ts":${jsonNumbers(st, at + RING_TS, cap)},"v":${jsonNumbers(st, at + RING_TS + cap, cap)},` +
    `"head":${jsonNumber(st[at + RING_HEAD]!)},"len":${jsonNumber(st[at + RING_LEN]!)}}`
  );
}

/**
 * The state as JSON text, written straight from the array: what `JSON.stringify` gives for an
 * object of its fields (numbers, booleans, number arrays, rings as `{ts, v, head, len}`; NaN as
 * null), without building that object first. Saves write it for every changed device.
 */
export function stateJson(st: Float64Array, o: number, l: Layout): string {
  let s = '{';
  for (const f of l.fields) {
    const at = o + f.off;
    s += (f.off ? ',' : '') + f.key;
    switch (f.type) {
      case 'num':
        s += jsonNumber(st[at]!);
        break;
      case 'bool':
        s += st[at] !== 0 ? 'true' : 'false';
        break;
      case 'nums':
        s += jsonNumbers(st, at, f.n);
        break;
      case 'ring':
        s += ringJson(st, at, f.cap);
        break;
      case 'rings': {
        const parts: string[] = [];
        for (let k = 0; k < f.n; k++) parts.push(ringJson(st, at + k * ringSize(f.cap), f.cap));
        s += `[${parts.join(',')}]`;
        break;
      }
    }
  }
  return s + '}';
}

/**
 * Reads a saved state into a fresh one of the same layout. A number saved as null (NaN in JSON)
 * or missing is NaN again; a boolean or array that is missing keeps its fresh value.
 */
export function loadState(st: Float64Array, o: number, l: Layout, saved: unknown): void {
  if (typeof saved !== 'object' || saved === null) return;
  const s = saved as Record<string, unknown>;
  for (const f of l.fields) {
    const at = o + f.off;
    const v = s[f.name];
    switch (f.type) {
      case 'num':
        st[at] = num(v);
        break;
      case 'bool':
        if (typeof v === 'boolean') st[at] = v ? 1 : 0;
        break;
      case 'nums':
        loadNums(st, at, f.n, v);
        break;
      case 'ring':
        loadRing(st, at, f.cap, v);
        break;
      case 'rings':
        if (Array.isArray(v))
          for (let k = 0; k < f.n; k++) loadRing(st, at + k * ringSize(f.cap), f.cap, v[k]);
        break;
    }
  }
}

const num = (v: unknown): number => (typeof v === 'number' ? v : NaN);

function loadNums(st: Float64Array, at: number, n: number, v: unknown): void {
  if (!Array.isArray(v)) return;
  for (let i = 0; i < n; i++) st[at + i] = num(v[i]);
}

function loadRing(st: Float64Array, at: number, cap: number, v: unknown): void {
  if (typeof v !== 'object' || v === null) return;
  const r = v as Record<string, unknown>;
  loadNums(st, at + RING_TS, cap, r.ts);
  loadNums(st, at + RING_TS + cap, cap, r.v);
  st[at + RING_HEAD] = num(r.head);
  st[at + RING_LEN] = num(r.len);
}

/**
 * The doubles of every rule state of every device. Blocks are handed out once per device (and
 * again when its rules change); a released block is reused by the next one of the same size.
 * Growing replaces `buf`: callers read `buf` afresh after anything that may allocate.
 */
export class StateArena {
  buf: Float64Array;
  private top = 0;
  private readonly free = new Map<number, number[]>();

  constructor(initialDoubles = 1 << 16) {
    this.buf = new Float64Array(initialDoubles);
  }

  alloc(n: number): number {
    const reuse = this.free.get(n)?.pop();
    if (reuse !== undefined) return reuse;
    const o = this.top;
    if (o + n > this.buf.length) {
      let cap = this.buf.length * 2;
      while (o + n > cap) cap *= 2;
      const next = new Float64Array(cap);
      next.set(this.buf.subarray(0, o));
      this.buf = next;
    }
    this.top = o + n;
    return o;
  }

  release(o: number, n: number): void {
    if (n === 0) return;
    let list = this.free.get(n);
    if (!list) this.free.set(n, (list = []));
    list.push(o);
  }

  /** Doubles handed out (released blocks included): for stats and tests. */
  used(): number {
    return this.top;
  }
}
