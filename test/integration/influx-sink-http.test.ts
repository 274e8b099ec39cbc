import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import Database from 'better-sqlite3';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { influxSchema, outboxSchema, type InfluxConfig } from '../../gateway/src/config/schema.js';
import { InfluxWriter } from '../../gateway/src/sinks/influx/index.js';
import { Outbox } from '../../gateway/src/storage/outbox.js';
import { waitFor } from '../fixtures/ports.js';

/**
 * A real InfluxDB does not answer 429 or 401 on demand, so these cases talk to a tiny local HTTP
 * server that plays the answers given to it and records what it received.
 */
interface Received {
  at: number;
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}
interface Answer {
  /** 0: never answer (the request hangs). */
  status: number;
  /** Answers only once this settles. */
  after?: Promise<void>;
  headers?: Record<string, string>;
  body?: string;
}

const log = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
const TS = Date.now() - 60_000;
const LINES = [
  'gas_meter,site=s1,device=g1 volume_m3=1.5 ' + TS + '\n',
  'gas_meter,site=s1,device=g1 volume_m3=2.5 ' + (TS + 1) + '\n',
];

describe('InfluxDB sink against a scripted HTTP server', () => {
  let server: Server;
  let url: string;
  let received: Received[] = [];
  let script: Answer[] = [];
  let fallback: Answer = { status: 204 };
  const dirs: string[] = [];
  const stops: Array<() => Promise<void>> = [];

  beforeAll(async () => {
    server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const raw = Buffer.concat(chunks);
        const body = req.headers['content-encoding'] === 'gzip' ? gunzipSync(raw) : raw;
        received.push({
          at: Date.now(),
          method: req.method!,
          url: req.url!,
          headers: req.headers,
          body: body.toString(),
        });
        const a = script.shift() ?? fallback;
        if (a.status === 0) return;
        void (a.after ?? Promise.resolve()).then(() => {
          res.writeHead(a.status, a.headers);
          res.end(a.body ?? '');
        });
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterEach(async () => {
    for (const stop of stops.splice(0)) await stop();
    received = [];
    script = [];
    fallback = { status: 204 };
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  async function rig(influx: Partial<InfluxConfig>): Promise<{ outbox: Outbox; writer: InfluxWriter }> {
    const dir = mkdtempSync(join(tmpdir(), 'fgw-influx-http-'));
    dirs.push(dir);
    const outbox = new Outbox(outboxSchema.parse({ synchronous: 'normal' }), dir, log);
    await outbox.start();
    const cfg = influxSchema.parse({
      url,
      flushIntervalMs: 20,
      retry: { minMs: 20, maxMs: 5000 },
      ...influx,
    });
    const writer = new InfluxWriter(cfg, outbox, log);
    await writer.start();
    stops.push(async () => {
      await writer.stop();
      await outbox.stop();
    });
    for (const l of LINES) outbox.append(l);
    outbox.commit();
    return { outbox, writer };
  }

  for (const api of ['v1', 'v2'] as const) {
    it(`${api}: waits as long as Retry-After asks after a 429`, async () => {
      script = [
        {
          status: 429,
          headers: { 'retry-after': '1' },
          body: '{"code":"too many requests","message":"slow down"}',
        },
      ];
      const { outbox, writer } = await rig({ api, token: 'tok' });
      await waitFor(() => writer.health().state === 'degraded', 5000, 'retrying');
      expect(String(writer.health().detail)).toMatch(/429 slow down/);
      await waitFor(() => outbox.stats().pendingLines === 0, 10_000, 'written after the retry');
      expect(received).toHaveLength(2);
      expect(received[1]!.at - received[0]!.at).toBeGreaterThanOrEqual(900);
      expect(received[1]!.body).toBe(LINES.join(''));
      expect(writer.health().state).toBe('ok');
    });

    it(`${api}: gzips the body and sends the API's path, parameters and credentials`, async () => {
      const { outbox } = await rig(
        api === 'v1'
          ? { api, gzip: true, db: 'plant', retentionPolicy: 'autogen', username: 'gw', password: 'secret' }
          : { api, gzip: true, org: 'acme', bucket: 'plant', token: 'tok-123' },
      );
      await waitFor(() => outbox.stats().pendingLines === 0, 10_000, 'written');
      expect(received).toHaveLength(1);
      const r = received[0]!;
      expect(r.method).toBe('POST');
      expect(r.headers['content-encoding']).toBe('gzip');
      expect(r.body).toBe(LINES.join(''));
      const u = new URL(r.url, url);
      if (api === 'v1') {
        expect(u.pathname).toBe('/write');
        expect(Object.fromEntries(u.searchParams)).toEqual({ db: 'plant', rp: 'autogen', precision: 'ms' });
        expect(r.headers.authorization).toBe(`Basic ${Buffer.from('gw:secret').toString('base64')}`);
      } else {
        expect(u.pathname).toBe('/api/v2/write');
        expect(Object.fromEntries(u.searchParams)).toEqual({ org: 'acme', bucket: 'plant', precision: 'ms' });
        expect(r.headers.authorization).toBe('Token tok-123');
      }
    });

    it(`${api}: a refused token leaves the readings waiting and the component down`, async () => {
      fallback = {
        status: 401,
        headers: { 'content-type': 'application/json' },
        body: '{"code":"unauthorized","message":"unauthorized access"}',
      };
      const { outbox, writer } = await rig({ api, token: 'wrong', retry: { minMs: 20, maxMs: 200 } });
      await waitFor(() => received.length >= 2, 5000, 'retried');
      expect(writer.health()).toMatchObject({ state: 'down', pendingLines: 2 });
      expect(String(writer.health().detail)).toMatch(/401 unauthorized access/);
      expect(outbox.stats()).toMatchObject({ pendingLines: 2, parkedBatches: 0 });
      fallback = { status: 204 };
      await waitFor(() => outbox.stats().pendingLines === 0, 5000, 'written once the token works');
      expect(writer.health().state).toBe('ok');
    });

    it(`${api}: gives up on a request that gets no answer within timeoutMs and sends it again`, async () => {
      script = [{ status: 0 }, { status: 0 }, { status: 0 }];
      const { outbox, writer } = await rig({ api, timeoutMs: 300 });
      await waitFor(() => outbox.stats().pendingLines === 0, 10_000, 'written after the timeouts');
      expect(received).toHaveLength(4);
      expect(received.every((r) => r.body === LINES.join(''))).toBe(true);
      expect(writer.health().state).toBe('ok');
    });
  }

  it('holds a partial batch for flushIntervalMs and sends a full one at once', async () => {
    const t0 = Date.now();
    const partial = await rig({ api: 'v1', batchLines: 100, flushIntervalMs: 1000 });
    await waitFor(() => partial.outbox.stats().pendingLines === 0, 10_000, 'partial batch flushed');
    expect(received[0]!.at - t0).toBeGreaterThanOrEqual(900);

    received = [];
    const t1 = Date.now();
    // With a minute's flush interval only the size rule can send these two lines in time.
    const full = await rig({ api: 'v1', batchLines: 2, flushIntervalMs: 60_000 });
    await waitFor(() => full.outbox.stats().pendingLines === 0, 10_000, 'full batch sent');
    expect(received).toHaveLength(1);
    expect(received[0]!.at - t1).toBeLessThan(10_000);
  });

  it('sends a backlog in requests of everything waiting, up to backlogBatchLines', async () => {
    // Down: the first batch (the rig's 2 lines) is retried while 2,498 more are committed in
    // rows of 100, so a backlog of 2,500 waits when the server answers again.
    fallback = { status: 503 };
    const { outbox } = await rig({ api: 'v1', batchLines: 100, backlogBatchLines: 1000, concurrency: 1 });
    await waitFor(() => received.length >= 1, 5000, 'first attempt');
    for (let i = 0; i < 2498; i++) {
      outbox.append(`gas_meter,site=s1,device=g${i % 7} volume_m3=${i} ${TS + 10 + i}\n`);
      if ((i + 1) % 100 === 0) await outbox.flush();
    }
    await outbox.flush();
    await waitFor(() => outbox.stats().pendingLines === 2500, 5000, 'backlog committed');
    const failed = received.length;
    fallback = { status: 204 };
    await waitFor(() => outbox.stats().pendingLines === 0, 10_000, 'backlog written');
    const sizes = received.slice(failed).map((r) => r.body.split('\n').filter(Boolean).length);
    // The retried batch, then two capped requests, then the 498 left in one (not five of 100).
    expect(sizes.slice(1)).toEqual([1000, 1000, 498]);
    expect(sizes[0]).toBeLessThanOrEqual(2);
  });

  const line = (i: number) => `gas_meter,site=s1,device=g1 volume_m3=${i} ${TS + 10 + i}\n`;
  const linesIn = (r: Received) => r.body.split('\n').filter(Boolean).length;

  /**
   * A v1 rig with batches of 100 whose first request (the rig's 2 lines and 98 more) the server
   * answers only when `answer` is called.
   */
  async function firstBatchHeld(
    influx: Partial<InfluxConfig>,
  ): Promise<{ outbox: Outbox; writer: InfluxWriter; answer: () => void }> {
    let answer!: () => void;
    script = [{ status: 204, after: new Promise<void>((r) => (answer = r)) }];
    const { outbox, writer } = await rig({ api: 'v1', batchLines: 100, ...influx });
    for (let i = 0; i < 98; i++) outbox.append(line(i));
    await outbox.flush();
    await waitFor(() => received.length === 1, 5000, 'first batch sent');
    return { outbox, writer, answer };
  }

  it('counts only committed lines: a slow commit does not make it send the few committed ones', async () => {
    const { outbox, writer, answer } = await firstBatchHeld({ flushIntervalMs: 60_000, concurrency: 1 });
    // While InfluxDB works on it: 50 lines committed, then 500 whose commit waits for the disk
    // (another connection holds the write lock).
    for (let i = 98; i < 148; i++) outbox.append(line(i));
    await outbox.flush();
    const locker = new Database(join(dirs.at(-1)!, 'outbox.db'));
    locker.exec('BEGIN IMMEDIATE');
    try {
      for (let i = 148; i < 648; i++) outbox.append(line(i));
      outbox.commit();
      answer();
      await waitFor(() => Number(writer.health().linesWritten) >= 100, 5000, 'first batch confirmed');
      // The writer has had its turn with 50 committed and 500 in the commit.
      await new Promise((r) => setTimeout(r, 300));
    } finally {
      locker.exec('COMMIT');
      locker.close();
    }
    await waitFor(() => outbox.stats().pendingLines === 0, 10_000, 'everything written');
    // Not [100, 50, 500]: 50 lines are under batchLines, so they wait for the rest.
    expect(received.map(linesIn)).toEqual([100, 550]);
  });

  it("a lane finishing a request does not restart the flush clock of another lane's partial batch", async () => {
    const { outbox, answer } = await firstBatchHeld({ flushIntervalMs: 1000, concurrency: 2 });
    // Ten lines wait for their flush interval on the idle lane while the other lane's request is
    // answered 900 ms later; they must still go out about 1000 ms after they were committed, not
    // 1000 ms after that answer.
    for (let i = 98; i < 108; i++) outbox.append(line(i));
    await outbox.flush();
    const committedAt = Date.now();
    setTimeout(answer, 900);
    await waitFor(() => received.length === 2, 5000, 'partial batch sent');
    expect(received.map(linesIn)).toEqual([100, 10]);
    expect(received[1]!.at - committedAt).toBeLessThan(1600);
  });

  it('parks a batch refused with 400 and writes the next one', async () => {
    script = [{ status: 400, body: '{"error":"unable to parse \'bad line\': missing fields"}' }];
    const { outbox, writer } = await rig({ api: 'v1' });
    await waitFor(() => outbox.stats().parkedBatches === 1, 5000, 'parked');
    expect(outbox.listParked()[0]).toMatchObject({
      lines: 2,
      reason: "400 unable to parse 'bad line': missing fields",
    });
    expect(writer.health()).toMatchObject({ state: 'degraded', parkedBatches: 1 });
    outbox.append(`gas_meter,site=s1,device=g1 volume_m3=3.5 ${TS + 2}\n`);
    outbox.commit();
    await waitFor(() => outbox.stats().pendingLines === 0, 5000, 'next batch written');
    expect(received).toHaveLength(2);
    expect(writer.health()).toMatchObject({ state: 'ok', linesWritten: 1 });
  });

  it('stops promptly while backing off and keeps the batch for the next start', async () => {
    fallback = { status: 503, headers: { 'retry-after': '30' } };
    const { outbox, writer } = await rig({ api: 'v1', retry: { minMs: 20, maxMs: 60_000 } });
    await waitFor(() => received.length === 1 && writer.health().state === 'degraded', 5000, 'backing off');
    const t0 = Date.now();
    await writer.stop();
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(writer.health().state).toBe('stopped');
    expect(outbox.stats().pendingLines).toBe(2);
  });
});
