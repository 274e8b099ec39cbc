// `npm run bench:dashboard`: the dashboard in real Chromium with 10,000 simulated devices
// reporting through the gateway (embedded broker, the simulators' fleet scenario, the live
// stream). Measures frame times (requestAnimationFrame deltas) and the JS heap (CDP
// Runtime.getHeapUsage) while the overview is live, then while it scrolls.
//   BENCH_DEVICES (10000)  BENCH_INTERVAL_MS (30000: each device reports every 30 s)
//   BENCH_RUNS (3)  BENCH_WINDOW_S (20: each run measures this long)  BENCH_SCROLL_S (10)
//   BENCH_PROFILE=1 (CPU profile of the scroll phase)
//   BENCH_TRACE=1 (the browser's own work while scrolling: wall and CPU time per trace event, per
//   thread, and the main thread's CPU time per frame)
//   BENCH_SCROLL_PX (120 px scrolled per frame)  BENCH_LAYERS=1 (the page's compositing layers)
//   BENCH_COMPARE=<git ref>[,<ref>…] (those commits' dashboards scrolled too, alternated with this
//   tree's in the same session and browser, BENCH_SCROLL_ROUNDS (3) times each: before and after
//   side by side under the same load)
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { build } from 'vite';
import { pino } from 'pino';
import type { CDPSession, Page } from 'playwright-core';
import { startSimulation } from '../simulators/index.js';
import { launchBrowser, newPage, signIn } from '../test/fixtures/browser.js';
import { buildDashboard } from '../test/fixtures/dashboard.js';
import { ADMIN_TOKEN, startGateway, testConfig } from '../test/fixtures/gateway.js';
import { waitFor } from '../test/fixtures/ports.js';

const DEVICES = Number(process.env.BENCH_DEVICES ?? 10_000);
const INTERVAL_MS = Number(process.env.BENCH_INTERVAL_MS ?? 30_000);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const WINDOW_S = Number(process.env.BENCH_WINDOW_S ?? 20);
const SCROLL_S = Number(process.env.BENCH_SCROLL_S ?? 10);
/** BENCH_SCROLL_PX: scrolled per frame (120: a fast fling, a new row of tiles about every frame). */
const SCROLL_PX = Number(process.env.BENCH_SCROLL_PX ?? 120);
/** BENCH_LAYERS=1: the page's composited layers (CDP LayerTree) printed before scrolling. */
const LAYERS = process.env.BENCH_LAYERS === '1';
/** BENCH_PROFILE=1: a CPU profile of the page while it scrolls, top functions by self time. */
const PROFILE = process.env.BENCH_PROFILE === '1';
/** BENCH_TRACE=1: a Chromium trace of the scroll phase, summed by event name and thread. */
const TRACE = process.env.BENCH_TRACE === '1';
/** BENCH_COMPARE: git refs whose dashboards are measured beside this tree's. */
const COMPARE = (process.env.BENCH_COMPARE ?? '').split(',').filter(Boolean);
const SCROLL_ROUNDS = Number(process.env.BENCH_SCROLL_ROUNDS ?? (COMPARE.length ? 3 : 1));

interface Build {
  label: string;
  dir: string;
  cleanup(): void;
}

/**
 * The dashboard of another commit, built the way this tree's is: its `dashboards/web` from git,
 * in a temporary folder whose node_modules is a link to this checkout's.
 */
async function buildRef(ref: string): Promise<Build> {
  const root = mkdtempSync(join(tmpdir(), 'fgw-web-ref-'));
  const tar = execFileSync('git', ['archive', ref, 'dashboards/web'], { maxBuffer: 64 << 20 });
  execFileSync('tar', ['-x', '-C', root], { input: tar });
  symlinkSync(resolve('node_modules'), join(root, 'node_modules'));
  const out = join(root, 'out');
  mkdirSync(out);
  await build({
    configFile: join(root, 'dashboards/web/vite.config.ts'),
    logLevel: 'warn',
    build: { outDir: out, emptyOutDir: true },
  });
  const sha = execFileSync('git', ['rev-parse', '--short', ref]).toString().trim();
  return {
    label: `${ref} (${sha})`,
    dir: out,
    cleanup: () => rmSync(root, { recursive: true, force: true }),
  };
}

interface TraceEvent {
  name: string;
  ph: string;
  dur?: number;
  /** CPU time of the thread in the event (µs): unlike `dur`, not stretched by waiting for a core. */
  tdur?: number;
  tid: number;
  args?: { name?: string };
}

/** Complete events' time by thread and name, largest first (ms of wall time, ms of CPU time). */
function traceTimes(events: TraceEvent[]): Array<[string, number, number]> {
  const threads = new Map<number, string>();
  for (const e of events) if (e.name === 'thread_name' && e.args?.name) threads.set(e.tid, e.args.name);
  const totals = new Map<string, [number, number]>();
  for (const e of events) {
    if (e.ph !== 'X' || e.dur === undefined) continue;
    const key = `${threads.get(e.tid) ?? e.tid} ${e.name}`;
    const t = totals.get(key) ?? [0, 0];
    t[0] += e.dur / 1000;
    t[1] += (e.tdur ?? 0) / 1000;
    totals.set(key, t);
  }
  return [...totals.entries()]
    .map(([k, [w, c]]): [string, number, number] => [k, w, c])
    .sort((a, b) => b[1] - a[1]);
}

/** The page's main thread: CPU time per frame of all its tasks, and of its largest events. */
function printTrace(label: string, trace: TraceEvent[], frames: number): void {
  const times = traceTimes(trace);
  const main = times.find(([k]) => k === 'CrRendererMain RunTask');
  console.log(
    `trace, ${label}: main thread CPU ${main ? (main[2] / frames).toFixed(1) : '?'} ms per frame over ${frames} frames; by thread and event (wall ms, CPU ms):`,
  );
  for (const [name, wall, cpu] of times.slice(0, 25))
    console.log(`  ${wall.toFixed(0).padStart(6)} ${cpu.toFixed(0).padStart(6)}  ${name}`);
}

interface Frames {
  n: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
  over50: number;
  longTasks: number;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

/**
 * Runs in the page (plain JS: the benchmark is type-checked without the DOM library): frame deltas
 * from requestAnimationFrame over `ms`, long tasks, and optionally the tile list scrolled every frame.
 */
const MEASURE_IN_PAGE = `([ms, doScroll, step]) => new Promise((resolve) => {
  const deltas = [];
  let longTasks = 0;
  const obs = new PerformanceObserver((l) => (longTasks += l.getEntries().length));
  obs.observe({ type: 'longtask', buffered: false });
  const list = document.querySelector('.vlist');
  let last = performance.now();
  const end = last + ms;
  let dir = 1;
  // Read once: reading layout sizes after each scrollTop write would force a layout per frame.
  const maxTop = list ? list.scrollHeight - list.clientHeight : 0;
  let top = list ? list.scrollTop : 0;
  const frame = (now) => {
    deltas.push(now - last);
    last = now;
    if (doScroll && list) {
      if (top >= maxTop - 10) dir = -1;
      if (top <= 0) dir = 1;
      top = Math.max(0, Math.min(maxTop, top + dir * step));
      list.scrollTop = top;
    }
    if (now < end) return requestAnimationFrame(frame);
    obs.disconnect();
    const s = deltas.slice(1).sort((a, b) => a - b);
    const q = (p) => s[Math.min(s.length - 1, Math.floor(p * s.length))];
    resolve({ n: s.length, p50: q(0.5), p95: q(0.95), p99: q(0.99), max: s[s.length - 1],
      over50: s.filter((d) => d > 50).length, longTasks });
  };
  requestAnimationFrame(frame);
})`;

interface CpuProfile {
  nodes: Array<{ id: number; callFrame: { functionName: string; url: string; lineNumber: number } }>;
  samples: number[];
  timeDeltas: number[];
}

/** Self time per function of a CDP CPU profile, largest first. */
function selfTimes(p: CpuProfile): Array<[string, number]> {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const totals = new Map<string, number>();
  p.samples.forEach((id, i) => {
    const f = byId.get(id)?.callFrame;
    const name = f ? `${f.functionName || '(anonymous)'} ${f.url.split('/').pop()}:${f.lineNumber}` : '?';
    totals.set(name, (totals.get(name) ?? 0) + (p.timeDeltas[i] ?? 0) / 1000);
  });
  return [...totals.entries()].sort((a, b) => b[1] - a[1]);
}

/** Per build: each round's p95 and frames over 50 ms, and the medians of its rounds. */
function summarise(
  builds: Build[],
  runs: Array<{ build: string; round: number; loadavg: string; frames: Frames }>,
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const b of builds) {
    const mine = runs.filter((r) => r.build === b.label).map((r) => r.frames);
    out[b.label] = {
      frames: mine.map((f) => f.n),
      p50: mine.map((f) => f.p50.toFixed(1)),
      p95: mine.map((f) => f.p95.toFixed(1)),
      framesOver50ms: mine.map((f) => f.over50),
      loadavg: runs.filter((r) => r.build === b.label).map((r) => r.loadavg),
      medianP50: median(mine.map((f) => f.p50)).toFixed(1),
      medianP95: median(mine.map((f) => f.p95)).toFixed(1),
      medianOver50: median(mine.map((f) => f.over50)),
    };
  }
  return out;
}

async function measure(page: Page, seconds: number, scroll: boolean): Promise<Frames> {
  const fn = `(${MEASURE_IN_PAGE})([${seconds * 1000}, ${scroll}, ${SCROLL_PX}])`;
  return (await page.evaluate(fn)) as Frames;
}

/** Scrolls for SCROLL_S, with a trace of the browser's work when BENCH_TRACE=1. */
async function scrollPhase(cdp: CDPSession, page: Page, label: string): Promise<Frames> {
  const trace: TraceEvent[] = [];
  let traced: () => void = () => undefined;
  const complete = new Promise<void>((resolve) => (traced = resolve));
  const onEvent = (e: { method: string; params?: unknown }) => {
    if (e.method === 'Tracing.dataCollected') trace.push(...(e.params as { value: TraceEvent[] }).value);
    if (e.method === 'Tracing.tracingComplete') traced();
  };
  if (TRACE) {
    cdp.on('event', onEvent);
    await cdp.send('Tracing.start', {
      categories: 'devtools.timeline,disabled-by-default-devtools.timeline,cc,viz',
      transferMode: 'ReportEvents',
    });
  }
  const frames = await measure(page, SCROLL_S, true);
  console.log(`scroll, ${label}: ${JSON.stringify(frames)}`);
  if (TRACE) {
    await cdp.send('Tracing.end');
    await Promise.race([complete, new Promise((resolve) => setTimeout(resolve, 60_000))]);
    cdp.off('event', onEvent);
    printTrace(label, trace, frames.n);
  }
  return frames;
}

async function main(): Promise<void> {
  const load0 = loadavg();
  const web = await buildDashboard();
  const head = execFileSync('git', ['rev-parse', '--short', 'HEAD']).toString().trim();
  const dirty = execFileSync('git', ['status', '--porcelain', 'dashboards/web']).toString().trim() !== '';
  const builds: Build[] = [{ label: `this tree (${head}${dirty ? ', modified' : ''})`, ...web }];
  for (const ref of COMPARE) builds.push(await buildRef(ref));
  /** The build the page is served from: the gateway serves this tree's, the others come through page routes. */
  let served = builds[0]!;
  const cfg = testConfig({
    influx: { enabled: false },
    http: { dashboard: { dir: web.dir } },
  });
  const gw = await startGateway(cfg);
  const sim = await startSimulation({
    brokerUrl: gw.mqttUrl,
    devices: DEVICES,
    intervalMs: INTERVAL_MS,
    qos: 0,
    logger: pino({ level: 'warn' }),
  });
  const browser = await launchBrowser();
  try {
    console.log(`waiting for ${DEVICES} devices to report (interval ${INTERVAL_MS} ms)`);
    await waitFor(() => gw.registry.size >= DEVICES, INTERVAL_MS * 3 + 60_000, 'every device registered');
    const { context, page } = await newPage(browser, { width: 1440, height: 900 });
    const cdp = await context.newCDPSession(page);
    if (builds.length > 1)
      // Everything outside /api from the build being measured (index.html for any other path).
      await page.route(
        (url) => !url.pathname.startsWith('/api'),
        (route) => {
          const file = join(served.dir, new URL(route.request().url()).pathname);
          const isFile = statSync(file, { throwIfNoEntry: false })?.isFile() ?? false;
          return route.fulfill({ path: isFile ? file : join(served.dir, 'index.html') });
        },
      );
    await signIn(page, gw.httpUrl!, ADMIN_TOKEN);
    // Every device counted in the overview's summary (the store holds all of them).
    const counted = `[...document.querySelectorAll('[data-testid=device-counts] b')].reduce((a, b) => a + Number(b.textContent), 0)`;
    const overviewFull = async () => {
      await page.waitForSelector('.tile', { timeout: 60_000 });
      await page.waitForFunction(`${counted} >= ${DEVICES}`, undefined, { timeout: 120_000, polling: 1000 });
    };
    await overviewFull();
    const domNodes = (await page.evaluate(`document.getElementsByTagName('*').length`)) as number;
    const tilesInDom = (await page.evaluate(`document.querySelectorAll('.tile').length`)) as number;
    await page.waitForTimeout(3000);
    if (LAYERS) {
      const got = new Promise<unknown>((resolve) => cdp.once('LayerTree.layerTreeDidChange', resolve));
      await cdp.send('LayerTree.enable');
      const { layers } = (await got) as {
        layers?: Array<{
          layerId: string;
          width: number;
          height: number;
          drawsContent: boolean;
          scrollRects?: unknown[];
        }>;
      };
      console.log(`composited layers: ${layers?.length ?? '?'}`);
      for (const l of layers ?? [])
        console.log(
          `  ${l.layerId} ${l.width}x${l.height} draws=${l.drawsContent} scrollRects=${l.scrollRects?.length ?? 0}`,
        );
      await cdp.send('LayerTree.disable');
    }
    const heapStart = (await cdp.send('Runtime.getHeapUsage')) as { usedSize: number; totalSize: number };
    const live: Frames[] = [];
    for (let i = 0; i < RUNS; i++) {
      live.push(await measure(page, WINDOW_S, false));
      console.log(`live run ${i + 1}: ${JSON.stringify(live[i])}`);
    }
    if (PROFILE) {
      await cdp.send('Profiler.enable');
      await cdp.send('Profiler.start');
    }
    const scroll = await scrollPhase(cdp, page, served.label);
    if (PROFILE) {
      const { profile } = (await cdp.send('Profiler.stop')) as { profile: CpuProfile };
      console.log('scroll phase, self time by function (ms):');
      for (const [name, ms] of selfTimes(profile).slice(0, 15))
        console.log(`  ${ms.toFixed(0).padStart(6)}  ${name}`);
    }
    const heapEnd = (await cdp.send('Runtime.getHeapUsage')) as { usedSize: number; totalSize: number };
    await cdp.send('HeapProfiler.collectGarbage');
    const heapGc = (await cdp.send('Runtime.getHeapUsage')) as { usedSize: number; totalSize: number };
    const compared: Array<{ build: string; round: number; loadavg: string; frames: Frames }> = [];
    if (builds.length > 1) {
      // Rounds alternate the order (A B, B A, …) so a drift in the machine's load hits both alike.
      for (let round = 1; round <= SCROLL_ROUNDS; round++) {
        const order = round % 2 ? builds : [...builds].reverse();
        for (const b of order) {
          served = b;
          // Through a blank page: the same URL again would be a navigation within the document.
          await page.goto('about:blank');
          await page.goto(`${gw.httpUrl!}/#/overview`);
          await overviewFull();
          await page.waitForTimeout(3000);
          const la = loadavg()[0]!.toFixed(2);
          const frames = await scrollPhase(cdp, page, `round ${round}, ${b.label}`);
          compared.push({ build: b.label, round, loadavg: la, frames });
          console.log(`round ${round}, ${b.label}, load ${la}: ${JSON.stringify(frames)}`);
        }
      }
    }
    const mb = (b: number) => (b / 1024 / 1024).toFixed(1);
    const result = {
      devices: gw.registry.size,
      intervalMs: INTERVAL_MS,
      nproc: availableParallelism(),
      loadavgStart: load0.map((x) => x.toFixed(2)).join(' '),
      loadavgEnd: loadavg()
        .map((x) => x.toFixed(2))
        .join(' '),
      domNodes,
      tilesInDom,
      liveMedianOfRuns: {
        p50: median(live.map((r) => r.p50)).toFixed(1),
        p95: median(live.map((r) => r.p95)).toFixed(1),
        p99: median(live.map((r) => r.p99)).toFixed(1),
        max: Math.max(...live.map((r) => r.max)).toFixed(1),
        framesOver50ms: live.map((r) => r.over50),
        longTasks: live.map((r) => r.longTasks),
      },
      scroll: {
        p50: scroll.p50.toFixed(1),
        p95: scroll.p95.toFixed(1),
        p99: scroll.p99.toFixed(1),
        max: scroll.max.toFixed(1),
        framesOver50ms: scroll.over50,
      },
      heapMB: { start: mb(heapStart.usedSize), end: mb(heapEnd.usedSize), afterGc: mb(heapGc.usedSize) },
      simulator: sim.stats().ratePerSec,
      compared: builds.length > 1 ? summarise(builds, compared) : undefined,
    };
    console.log(JSON.stringify(result, null, 2));
  } finally {
    await browser.close();
    await sim.stop();
    await gw.cleanup();
    for (const b of builds) b.cleanup();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
