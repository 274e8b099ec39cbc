/** `points` of an SVG polyline through `v` (oldest first), filling w × h with a pixel of margin. */
export function sparkPoints(v: ArrayLike<number>, w: number, h: number): string {
  if (v.length < 2) return '';
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < v.length; i++) {
    const x = v[i]!;
    if (x < lo) lo = x;
    if (x > hi) hi = x;
  }
  const span = hi - lo || 1;
  let out = '';
  for (let i = 0; i < v.length; i++) {
    const px = (i / (v.length - 1)) * (w - 2) + 1;
    const py = h - 2 - ((v[i]! - lo) / span) * (h - 4);
    out += `${i ? ' ' : ''}${px.toFixed(1)},${py.toFixed(1)}`;
  }
  return out;
}
