import { readFileSync, readdirSync, writeFileSync, existsSync } from 'node:fs';

/** CPU seconds (user + system) used so far, from a /proc stat file (a process's or a thread's). */
function statCpuSeconds(file: string): number {
  const stat = readFileSync(file, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // utime and stime are fields 14 and 15 of stat (11 and 12 after the command name), in clock ticks.
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** CPU seconds (user + system) used so far by a process, from /proc. */
export function cpuSeconds(pid: number): number {
  return statCpuSeconds(`/proc/${pid}/stat`);
}

/** CPU seconds used so far by each thread of a process, by `name#tid`. */
export function threadCpuSeconds(pid: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const t of readdirSync(`/proc/${pid}/task`)) {
    const file = `/proc/${pid}/task/${t}/stat`;
    const st = readFileSync(file, 'utf8');
    out[`${st.slice(st.indexOf('(') + 1, st.lastIndexOf(')'))}#${t}`] = statCpuSeconds(file);
  }
  return out;
}

/** Resident memory of a process by mapping (file name, `[heap]`, `[anon]`...), in kB. */
export function residentByMapping(pid: number): Record<string, number> {
  const out: Record<string, number> = {};
  let name = '';
  for (const l of readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    const m = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(l);
    if (m) name = m[1] || '[anon]';
    else if (l.startsWith('Rss:')) out[name] = (out[name] ?? 0) + Number(l.split(/\s+/)[1]);
  }
  return out;
}

/** A gauge of a Prometheus text exposition, in MB (bytes / 1e6). */
export function gaugeMb(text: string, name: string): string {
  return (Number(new RegExp(`^${name} (\\S+)`, 'm').exec(text)?.[1] ?? 0) / 1e6).toFixed(0);
}

/** Peak resident set size of a process in MB (VmHWM). */
export function peakRssMb(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n % 2 ? s[(n - 1) / 2]! : (s[n / 2 - 1]! + s[n / 2]!) / 2;
}

/** Parses Prometheus histogram buckets `name_bucket{le="x"} n` into cumulative [le, count]. */
export function histogram(text: string, name: string): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  const re = new RegExp(`^${name}_bucket\\{le="([^"]+)"\\} (\\d+)`, 'gm');
  for (const m of text.matchAll(re)) out.push([m[1] === '+Inf' ? Infinity : Number(m[1]), Number(m[2])]);
  return out;
}

/** Quantile of a cumulative histogram (delta of two scrapes), interpolated within the bucket. */
export function quantile(after: Array<[number, number]>, before: Array<[number, number]>, q: number): number {
  const b = new Map(before);
  const counts = after.map(([le, c]) => [le, c - (b.get(le) ?? 0)] as [number, number]);
  const total = counts[counts.length - 1]?.[1] ?? 0;
  if (!total) return NaN;
  const rank = q * total;
  let prevLe = 0;
  let prevC = 0;
  for (const [le, c] of counts) {
    if (c >= rank) {
      if (!Number.isFinite(le)) return prevLe;
      return prevLe + ((le - prevLe) * (rank - prevC)) / Math.max(1, c - prevC);
    }
    prevLe = le;
    prevC = c;
  }
  return prevLe;
}

/** Replaces (or appends) the `## <title>` section of bench/RESULTS.md. */
export function writeSection(file: string, title: string, body: string): void {
  const text = existsSync(file) ? readFileSync(file, 'utf8') : '# Benchmark results\n';
  const head = `## ${title}\n`;
  const start = text.indexOf(head);
  let next: string;
  if (start < 0) next = text.trimEnd() + '\n\n' + head + '\n' + body.trim() + '\n';
  else {
    const end = text.indexOf('\n## ', start + head.length);
    next = text.slice(0, start) + head + '\n' + body.trim() + '\n' + (end < 0 ? '' : text.slice(end));
  }
  writeFileSync(file, next);
}

/**
 * The q-quantile (0..1) of samples by nearest rank: a value that was measured, never interpolated
 * (with 10 samples p50 is the 5th smallest and p99 the largest). NaN when there are none.
 */
export function percentile(xs: number[], q: number): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const rank = Math.ceil(Math.min(1, Math.max(0, q)) * s.length);
  return s[Math.max(1, rank) - 1]!;
}
