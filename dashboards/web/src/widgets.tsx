import type { ComponentChildren } from 'preact';
import { useEffect, useLayoutEffect, useRef, useState } from 'preact/hooks';
import type { LatestValue } from './api';
import { fmtValue } from './format';
import type { Ring } from './store';

const COLOURS: Record<string, string> = {
  critical: '#ef4444',
  warning: '#f59e0b',
  offline: '#6b7280',
  normal: '#22c55e',
};

/** A sparkline on a canvas; drawn again only when the store's version changes (tiles on screen only). */
const SPARK_W = 200;
const SPARK_H = 28;

export function Sparkline(props: { ring: Ring | undefined; state: string; version: number; width?: number }) {
  const ref = useRef<HTMLCanvasElement>(null);
  useEffect(() => {
    const c = ref.current;
    if (!c) return;
    const dpr = window.devicePixelRatio || 1;
    // Fixed size: reading the canvas' layout size here would force a layout per tile as rows
    // scroll into view.
    const w = props.width ?? SPARK_W;
    const h = SPARK_H;
    if (c.width !== w * dpr) c.width = w * dpr;
    if (c.height !== h * dpr) c.height = h * dpr;
    const g = c.getContext('2d');
    if (!g) return;
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, w, h);
    const v = props.ring?.values() ?? [];
    if (v.length < 2) return;
    let lo = Infinity;
    let hi = -Infinity;
    for (const x of v) {
      if (x < lo) lo = x;
      if (x > hi) hi = x;
    }
    const span = hi - lo || 1;
    g.beginPath();
    v.forEach((x, i) => {
      const px = (i / (v.length - 1)) * (w - 2) + 1;
      const py = h - 2 - ((x - lo) / span) * (h - 4);
      if (i === 0) g.moveTo(px, py);
      else g.lineTo(px, py);
    });
    g.strokeStyle = COLOURS[props.state] ?? COLOURS.normal!;
    g.lineWidth = 1.5;
    g.stroke();
  }, [props.ring, props.state, props.version]);
  return (
    <canvas
      class="spark"
      ref={ref}
      aria-hidden="true"
      style={{ width: `${props.width ?? SPARK_W}px`, height: `${SPARK_H}px` }}
    />
  );
}

/**
 * A virtual list: only the rows in view (and a few around) are in the DOM, so 10,000 devices cost
 * what a screenful costs. Row heights come from `heightOf` (fixed per row type), summed once per render.
 */
export function VirtualList<T>(props: {
  items: T[];
  heightOf: (item: T) => number;
  render: (item: T, index: number) => ComponentChildren;
  class?: string;
  overscan?: number;
}) {
  const ref = useRef<HTMLDivElement>(null);
  const [scroll, setScroll] = useState(0);
  const [height, setHeight] = useState(800);
  useLayoutEffect(() => {
    const el = ref.current;
    if (!el) return undefined;
    setHeight(el.clientHeight || 800);
    const ro = new ResizeObserver(() => setHeight(el.clientHeight || 800));
    ro.observe(el);
    return () => ro.disconnect();
  }, []);
  const { items } = props;
  const over = props.overscan ?? 3;
  const tops = new Float64Array(items.length + 1);
  for (let i = 0; i < items.length; i++) tops[i + 1] = tops[i]! + props.heightOf(items[i]!);
  // First row whose bottom is below the top of the view (binary search over the running sums).
  const rowAt = (y: number): number => {
    let lo = 0;
    let hi = items.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (tops[mid + 1]! <= y) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
  const lo = rowAt(scroll);
  const first = Math.max(0, lo - over);
  let last = lo;
  while (last < items.length && tops[last]! < scroll + height) last++;
  last = Math.min(items.length, last + over);
  const rows: ComponentChildren[] = [];
  for (let i = first; i < last; i++) {
    rows.push(
      <div class="vrow" key={i} style={{ top: `${tops[i]}px`, height: `${tops[i + 1]! - tops[i]!}px` }}>
        {props.render(items[i]!, i)}
      </div>,
    );
  }
  return (
    <div
      class={`vlist ${props.class ?? ''}`}
      ref={ref}
      onScroll={(e) => {
        // Re-render only when another row comes into view: rows sit at absolute offsets, so the
        // browser scrolls them without any work from us in between.
        const top = (e.currentTarget as HTMLDivElement).scrollTop;
        if (rowAt(top) !== rowAt(scroll) || rowAt(top + height) !== rowAt(scroll + height)) setScroll(top);
      }}
    >
      <div class="vspace" style={{ height: `${tops[items.length]}px` }}>
        {rows}
      </div>
    </div>
  );
}

/** Width of an element, followed as it changes. */
export function useWidth(): [(el: HTMLElement | null) => void, number] {
  const [w, setW] = useState(1024);
  const [el, setEl] = useState<HTMLElement | null>(null);
  useLayoutEffect(() => {
    if (!el) return undefined;
    setW(el.clientWidth);
    const ro = new ResizeObserver(() => setW(el.clientWidth));
    ro.observe(el);
    return () => ro.disconnect();
  }, [el]);
  return [setEl, w];
}

/** Ticks every `ms`: SLA countdowns move without waiting for an event. */
export function useNow(ms = 1000): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const id = window.setInterval(() => setNow(Date.now()), ms);
    return () => window.clearInterval(id);
  }, [ms]);
  return now;
}

export function Bars(props: { data: Record<string, number>; label?: (k: string) => string; cls?: string }) {
  const entries = Object.entries(props.data);
  const max = Math.max(1, ...entries.map(([, v]) => v));
  return (
    <div class={`bars ${props.cls ?? ''}`}>
      {entries.map(([k, v]) => (
        <div class="bar" key={k}>
          <span class="bar-label">{props.label ? props.label(k) : k}</span>
          <span class={`bar-fill b-${k}`} style={{ width: `${(v / max) * 100}%` }} />
          <span class="bar-value">{v}</span>
        </div>
      ))}
    </div>
  );
}

/**
 * A latest value as text; one its source marked bad or uncertain carries a mark and a title
 * saying so, never looking like a good value.
 */
export function ValueText(props: { v: LatestValue | undefined; t: (key: string) => string }) {
  const q = props.v?.quality;
  if (q !== 'bad' && q !== 'uncertain') return <>{fmtValue(props.v?.value)}</>;
  const title = props.t(q === 'bad' ? 'qualityBad' : 'qualityUncertain');
  return (
    <span class={`q-${q}`} title={title} data-quality={q}>
      {fmtValue(props.v?.value)}
      <span class="q-mark" aria-label={title}>
        {q === 'bad' ? '✕' : '?'}
      </span>
    </span>
  );
}
