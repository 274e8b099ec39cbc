import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import type { Threshold } from './api';

const NOT_GOOD_COLOUR = '#ef4444';

const SEV_COLOUR: Record<string, string> = { critical: '#ef4444', warning: '#f59e0b', info: '#60a5fa' };

/** x (epoch s), mean, min, max: min and max are the band that keeps a bucket's spikes in sight. */
export type Series = [number[], number[], number[], number[]];

/**
 * One metric over time with uPlot: the mean as a line, the min-max range of each bucket as a band,
 * the rule thresholds as dashed lines across the plot. The thresholds actually drawn are listed in
 * the chart's `data-drawn` attribute (`level:value` pairs), so what a person sees can be checked.
 * Where the source reported values that are not good (a failed sensor), a red tick stands on the
 * time axis instead of a value: the gap is explained, never filled (`data-not-good`: how many).
 */
export function MetricChart(props: {
  metric: string;
  unit: string;
  data: Series;
  thresholds: Threshold[];
  /** Instants (epoch s) of values that are not good, marked on the time axis. */
  notGood: number[];
  /** Changes when `data`'s arrays grew in place (live points), so the plot takes them again. */
  version: number;
}) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const thresholds = useRef(props.thresholds);
  thresholds.current = props.thresholds;
  const marks = useRef(props.notGood);
  marks.current = props.notGood;

  useEffect(() => {
    const el = box.current;
    if (!el) return undefined;
    const opts: uPlot.Options = {
      width: el.clientWidth || 600,
      height: 220,
      legend: { show: false },
      cursor: { drag: { x: true, y: false } },
      scales: {
        x: {
          time: true,
          // Wide enough for the marks too: a sensor that only fails has no values to set the range.
          range: (_u, lo, hi) => {
            const m = marks.current;
            if (m.length === 0) return [lo, hi];
            let a = Number.isFinite(lo) ? lo : m[0]!;
            let b = Number.isFinite(hi) ? hi : m[0]!;
            for (const x of m) {
              if (x < a) a = x;
              if (x > b) b = x;
            }
            return a === b ? [a - 60, b + 60] : [a, b];
          },
        },
        y: {
          range: (_u, lo, hi) => {
            let a = lo;
            let b = hi;
            for (const t of thresholds.current) {
              a = Math.min(a, t.value);
              b = Math.max(b, t.value);
            }
            const pad = (b - a) * 0.08 || Math.abs(b) * 0.1 || 1;
            return [a - pad, b + pad];
          },
        },
      },
      axes: [
        { stroke: '#9ca3af', grid: { stroke: '#1f2937' } },
        { stroke: '#9ca3af', grid: { stroke: '#1f2937' }, size: 56, label: props.unit },
      ],
      series: [
        {},
        { label: props.metric, stroke: '#38bdf8', width: 1.5, points: { show: false } },
        { label: 'min', stroke: 'transparent', points: { show: false } },
        { label: 'max', stroke: 'transparent', points: { show: false } },
      ],
      bands: [{ series: [3, 2], fill: 'rgba(56, 189, 248, 0.18)' }],
      hooks: {
        draw: [
          (u) => {
            const g = u.ctx;
            const { left, top, width, height } = u.bbox;
            const drawn: string[] = [];
            g.save();
            g.setLineDash([6, 4]);
            g.lineWidth = 1.5 * devicePixelRatio;
            for (const t of thresholds.current) {
              const y = u.valToPos(t.value, 'y', true);
              if (y < top || y > top + height) continue;
              g.strokeStyle = SEV_COLOUR[t.severity] ?? '#a3a3a3';
              g.beginPath();
              g.moveTo(left, y);
              g.lineTo(left + width, y);
              g.stroke();
              drawn.push(`${t.level}:${t.value}`);
            }
            g.setLineDash([]);
            g.strokeStyle = NOT_GOOD_COLOUR;
            g.lineWidth = 2 * devicePixelRatio;
            let shown = 0;
            for (const x of marks.current) {
              const px = u.valToPos(x, 'x', true);
              if (px < left || px > left + width) continue;
              g.beginPath();
              g.moveTo(px, top + height);
              g.lineTo(px, top + height - 8 * devicePixelRatio);
              g.stroke();
              shown++;
            }
            g.restore();
            el.dataset.drawn = drawn.sort().join(' ');
            el.dataset.notGood = String(shown);
          },
        ],
      },
    };
    const u = new uPlot(opts, props.data, el);
    plot.current = u;
    const ro = new ResizeObserver(() => u.setSize({ width: el.clientWidth || 600, height: 220 }));
    ro.observe(el);
    return () => {
      ro.disconnect();
      u.destroy();
      plot.current = null;
    };
    // Built once per metric; data arrives through setData below.
  }, [props.metric]);

  useEffect(() => {
    plot.current?.setData(props.data);
  }, [props.version, props.data]);

  // New thresholds (the device's rules came) need a redraw even when the data did not change.
  useEffect(() => {
    const u = plot.current;
    if (u) u.setData(u.data);
  }, [props.thresholds]);

  return <div class="chart" ref={box} data-metric={props.metric} data-points={props.data[0].length} />;
}
