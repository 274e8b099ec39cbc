import { z } from 'zod';

/**
 * Which configuration changes a reload can apply and which wait for a restart, read from the schema
 * itself: a key built into sockets, files or the ingest pipeline at start carries `.meta({ restart:
 * true })`; a key under it that reload applies anyway carries `.meta({ restart: false })` (the
 * nearest mark wins); an unmarked key is applied by Gateway.reload(). test/unit/config-restart.test.ts
 * keeps the unmarked keys and the ones reload applies the same list.
 */
declare module 'zod' {
  interface GlobalMeta {
    /** true: a change takes effect at the next start; false: reload applies it (under a true). */
    restart?: boolean;
  }
}

/** Reports go this deep (`mqtt.keepaliveSec`), as an operator looks them up in the reference. */
const REPORT_DEPTH = 2;

/**
 * Key paths (at most two levels: `mqtt.keepaliveSec`, `kinds.pump`) whose values differ between `a`
 * and `b` and whose schema marks them as needing a restart.
 */
export function restartNeeded(schema: z.ZodType, a: unknown, b: unknown): string[] {
  const out = new Set<string>();
  walk(schema, a, b, [], false, out);
  return [...out];
}

/**
 * Key paths a reload applies: the leaves of the schema no restart mark covers. Unmarked records and
 * arrays count as one key.
 */
export function liveKeyPaths(schema: z.ZodType): string[] {
  const out: string[] = [];
  const visit = (s: z.ZodType, path: string[], restart: boolean): void => {
    const r = markOf(s) ?? restart;
    const shape = shapeOf(s);
    if (!r && !marksBelow(s)) out.push(path.join('.'));
    else if (shape) for (const [k, child] of Object.entries(shape)) visit(child, [...path, k], r);
  };
  visit(schema, [], false);
  return out;
}

/** Whether any key under this schema carries a restart mark. */
function marksBelow(s: z.ZodType): boolean {
  const shape = shapeOf(s);
  return shape !== undefined && Object.values(shape).some((c) => markOf(c) !== undefined || marksBelow(c));
}

function walk(
  s: z.ZodType,
  a: unknown,
  b: unknown,
  path: string[],
  restart: boolean,
  out: Set<string>,
): void {
  if (sameJson(a, b)) return;
  const r = markOf(s) ?? restart;
  const shape = shapeOf(s);
  if (shape && isPlainObject(a) && isPlainObject(b)) {
    for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) {
      const child = shape[k];
      // A key the schema does not know (a strict schema never lets one through) counts as its parent.
      if (child) walk(child, a[k], b[k], [...path, k], r, out);
      else if (r) out.add(report([...path, k]));
    }
    return;
  }
  if (!r) return;
  for (const p of changedPaths(a, b, path, REPORT_DEPTH - path.length)) out.add(report(p));
}

function report(path: string[]): string {
  return path.slice(0, REPORT_DEPTH).join('.');
}

/** The restart mark of a schema: its own, or that of the schema it wraps (default, optional, ...). */
function markOf(s: z.ZodType): boolean | undefined {
  for (let cur: z.ZodType | undefined = s; cur; cur = innerOf(cur)) {
    const mark = z.globalRegistry.get(cur)?.restart;
    if (mark !== undefined) return mark;
  }
  return undefined;
}

/** The object shape under any wrappers, if the schema is an object. */
function shapeOf(s: z.ZodType): Record<string, z.ZodType> | undefined {
  for (let cur: z.ZodType | undefined = s; cur; cur = innerOf(cur))
    if (cur instanceof z.ZodObject) return cur.shape as Record<string, z.ZodType>;
  return undefined;
}

/** The schema a wrapper (default, prefault, optional, nullable, readonly, catch, pipe) wraps. */
function innerOf(s: z.ZodType): z.ZodType | undefined {
  const def = s.def as { innerType?: unknown; in?: unknown };
  const inner = def.innerType ?? def.in;
  return inner instanceof z.ZodType ? inner : undefined;
}

/** Paths of differing values, descending `depth` more levels into plain objects (records, say). */
function changedPaths(a: unknown, b: unknown, path: string[], depth: number): string[][] {
  if (sameJson(a, b)) return [];
  if (depth <= 0 || !isPlainObject(a) || !isPlainObject(b)) return [path];
  const out: string[][] = [];
  for (const k of new Set([...Object.keys(a), ...Object.keys(b)]))
    out.push(...changedPaths(a[k], b[k], [...path, k], depth - 1));
  return out;
}

function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
