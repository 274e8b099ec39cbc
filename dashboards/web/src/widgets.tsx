import type { ComponentChildren } from 'preact';
import { useEffect, useLayoutEffect, useMemo, useRef, useState } from 'preact/hooks';
import type { LatestValue } from './api';
import { fmtValue } from './format';
import type { Lang } from './i18n';
import { assignSlots } from './slots';
import { sparkPoints } from './spark';
import type { Ring } from './store';

const COLOURS: Record<string, string> = {
  critical: '#ef4444',
  warning: '#f59e0b',
  offline: '#6b7280',
  normal: '#22c55e',
};

const SPARK_H = 28;

/**
 * A sparkline as an SVG polyline, recomputed only when its device's revision or the width changes.
 * Not a canvas: Chromium gives every 2D canvas a compositing layer of its own, and with 54 tiles in
 * view the browser sorted out 54 layers on every frame of a scroll (bench/RESULTS.md, "Dashboard").
 * An SVG is painted with the tile, in the list's one layer. The width is given, not measured:
 * reading the layout here would force one per tile as rows scroll in.
 */
export function Sparkline(props: { ring: Ring | undefined; state: string; rev: number; width: number }) {
  const w = Math.max(40, Math.round(props.width));
  const points = useMemo(
    () => sparkPoints(props.ring?.values() ?? [], w, SPARK_H),
    [props.ring, props.rev, w],
  );
  return (
    <svg class="spark" width={w} height={SPARK_H} aria-hidden="true">
      <polyline points={points} stroke={COLOURS[props.state] ?? COLOURS.normal} />
    </svg>
  );
}

/**
 * A virtual list: only the rows in view (and a few around) are in the DOM, so 10,000 devices cost
 * what a screenful costs. Row heights come from `heightOf`, summed once per list of items. Rows
 * are keyed by their slot (index modulo the pool), so a row scrolling in takes over the DOM of
 * one that scrolled out instead of building its own.
 */
export function VirtualList<T>(props: {
  items: T[];
  heightOf: (item: T) => number;
  render: (item: T, index: number) => ComponentChildren;
  class?: string;
  overscan?: number;
  testid?: string;
}) {
  const ref = useRef<HTMLDivElement>(null);
  /** Row index → slot, for the rows rendered last time. */
  const slots = useRef(new Map<number, number>());
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
  const { items, heightOf } = props;
  const over = props.overscan ?? 3;
  const tops = useMemo(() => {
    const tops = new Float64Array(items.length + 1);
    for (let i = 0; i < items.length; i++) tops[i + 1] = tops[i]! + heightOf(items[i]!);
    return tops;
    // heightOf is a function of the item: new items, new sums.
  }, [items]);
  // First row whose bottom is below y (binary search over the running sums).
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
  const next = assignSlots(slots.current, first, last);
  const rows: ComponentChildren[] = [];
  // Children in the order of the rows (the order of the DOM is the order of the keyboard).
  for (let i = first; i < last; i++) {
    const s = next.get(i)!;
    rows.push(
      <div class="vrow" key={s} style={{ top: `${tops[i]}px`, height: `${tops[i + 1]! - tops[i]!}px` }}>
        {props.render(items[i]!, i)}
      </div>,
    );
  }
  slots.current = next;
  return (
    <div
      class={`vlist ${props.class ?? ''}`}
      ref={ref}
      data-testid={props.testid}
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

/** A labelled input whose value lives in the caller's state. */
export function Field(props: {
  label: string;
  name: string;
  value: string;
  onValue: (v: string) => void;
  datetime?: boolean;
  required?: boolean;
  min?: string;
  list?: string;
  maxLength?: number;
}) {
  const common = {
    name: props.name,
    value: props.value,
    required: props.required,
    min: props.min,
    list: props.list,
    maxLength: props.maxLength,
    onInput: (e: Event) => props.onValue((e.currentTarget as HTMLInputElement).value),
  };
  return (
    <label>
      {props.label}
      {props.datetime ? <input type="datetime-local" {...common} /> : <input {...common} />}
    </label>
  );
}

/** Width of an element, followed as it changes. */
export function useWidth(initial = 1024): [(el: HTMLElement | null) => void, number] {
  const [w, setW] = useState(initial);
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

// One clock for every countdown on screen: a timer per card would be thousands of timers.
const clockSubs = new Set<(now: number) => void>();
let clockTimer: number | undefined;

/** The time now, ticking every second; only the components that call this re-render. */
export function useNow(): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    clockSubs.add(setNow);
    if (clockTimer === undefined)
      clockTimer = window.setInterval(() => {
        const t = Date.now();
        for (const fn of clockSubs) fn(t);
      }, 1000);
    return () => {
      clockSubs.delete(setNow);
      if (clockSubs.size === 0) {
        window.clearInterval(clockTimer);
        clockTimer = undefined;
      }
    };
  }, []);
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
export function ValueText(props: { v: LatestValue | undefined; t: (key: string) => string; lang: Lang }) {
  const q = props.v?.quality;
  if (q !== 'bad' && q !== 'uncertain') return <>{fmtValue(props.v?.value, props.lang)}</>;
  const title = props.t(q === 'bad' ? 'qualityBad' : 'qualityUncertain');
  return (
    <span class={`q-${q}`} title={title} data-quality={q}>
      {fmtValue(props.v?.value, props.lang)}
      <span class="q-mark" aria-label={title}>
        {q === 'bad' ? '✕' : '?'}
      </span>
    </span>
  );
}

/** A form's Save (submits it; `testId` names it for tests) and Cancel buttons, as every fleet form ends. */
export function SaveCancel(props: { testId: string; save: string; cancel: string; onCancel: () => void }) {
  return (
    <div class="actions">
      <button type="submit" data-testid={props.testId}>
        {props.save}
      </button>
      <button type="button" class="secondary" onClick={props.onCancel}>
        {props.cancel}
      </button>
    </div>
  );
}
