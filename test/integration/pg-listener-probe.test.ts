import pg from 'pg';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PgListener } from '../../gateway/src/storage/sql/listener.js';
import { waitFor } from '../fixtures/ports.js';
import { startPostgres, type Postgres } from '../fixtures/postgres.js';
import { startTcpProxy, type TcpProxy } from '../fixtures/tcp-proxy.js';

/**
 * The LISTEN connection behind the live feed, the shared shelves and the token cache, cut without a
 * reset (a switch that drops packets, a VM paused): the socket stays open and silent. Without a probe
 * it would count as listening for minutes (TCP keepalive), and no revocation or shelf would be heard.
 */
describe('PgListener on a connection cut silently', () => {
  let server: Postgres;
  let proxy: TcpProxy;
  const stops: Array<() => Promise<unknown>> = [];

  beforeAll(async () => {
    server = await startPostgres();
    proxy = await startTcpProxy(server.port);
  }, 120_000);

  afterAll(async () => {
    for (const s of stops) await s();
    await proxy?.close();
    await server?.close();
  });

  it('notices the silence through its probe, reconnects when traffic flows, and says so to the caller', async () => {
    const heard: string[] = [];
    let listening = 0;
    const listener = new PgListener({
      url: server.url.replace(`:${server.port}/`, `:${proxy.port}/`),
      channel: 'probe_test',
      log: pino({ level: 'silent' }),
      onNotify: (p) => heard.push(p ?? ''),
      onListening: () => listening++,
      retry: { minMs: 100, maxMs: 300 },
      probe: { everyMs: 200, timeoutMs: 500 },
    });
    stops.push(() => listener.stop());
    await listener.start();
    expect(listener.connected).toBe(true);
    expect(listening).toBe(1);

    const sender = new pg.Client({ connectionString: server.url });
    await sender.connect();
    stops.push(() => sender.end());
    await sender.query(`NOTIFY probe_test, 'before'`);
    await waitFor(() => heard.includes('before'), 5000, 'a notification before the cut');

    proxy.freeze();
    await waitFor(() => !listener.connected, 5000, 'the silent cut noticed');
    expect(listener.lastError).toMatch(/probe/);

    proxy.thaw();
    await waitFor(() => listener.connected, 10_000, 'listening again');
    expect(listening).toBeGreaterThanOrEqual(2);
    await sender.query(`NOTIFY probe_test, 'after'`);
    await waitFor(() => heard.includes('after'), 5000, 'a notification after the cut');
  }, 60_000);
});
