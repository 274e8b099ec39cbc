/**
 * Ticket notifications: (1) what queueing the events costs a ticket change (create + acknowledge,
 * each its own SQLite transaction on disk, synchronous=FULL) with one webhook channel against none;
 * (2) delivery throughput of one webhook channel (in order, one request at a time) to a node:http
 * receiver on loopback answering 200. Median of 3 runs each. Prints the figures; they are recorded
 * by hand in bench/RESULTS.md under "## Ticket notifications".
 *
 *   npx tsx bench/notifications.ts [changes=400] [events=1000]
 */
import { createServer } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { openDb } from '../gateway/src/storage/db.js';
import { WORKORDER_MIGRATIONS, WorkOrderService } from '../gateway/src/workorders/index.js';
import {
  NOTIFY_MIGRATIONS,
  NotificationService,
  NotifyQueue,
  notificationsSchema,
} from '../gateway/src/notifications/index.js';
import { median } from './lib.js';

const CHANGES = Number(process.argv[2] ?? 400);
const EVENTS = Number(process.argv[3] ?? 1000);
const RUNS = 3;
const SECRET = 'bench-shared-secret-0123456789';

function tmpDb() {
  const dir = mkdtempSync(join(tmpdir(), 'fgw-bench-notify-'));
  return { db: openDb(join(dir, 'workorders.db'), [...WORKORDER_MIGRATIONS, ...NOTIFY_MIGRATIONS]), dir };
}

/** ms per ticket change (create, then acknowledge: 2 changes per ticket). */
async function changeCost(withWebhook: boolean): Promise<number> {
  const { db, dir } = tmpDb();
  const cfg = notificationsSchema.parse(
    withWebhook ? { webhooks: [{ name: 'cmms', url: 'http://127.0.0.1:9/hook', secret: SECRET }] } : {},
  );
  const notifier = new NotificationService({ queue: new NotifyQueue(db), config: cfg });
  // Not started: the events are queued, nobody sends them, so only the enqueue cost is measured.
  const wo = new WorkOrderService({ db, inTransaction: notifier.enqueue });
  await wo.start();
  const t0 = performance.now();
  for (let i = 0; i < CHANGES / 2; i++) {
    const t = wo.create({ title: `bench ${i}`, site: 's1' }, 'bench');
    wo.act(t.id, { action: 'acknowledge', actor: 'bench' });
  }
  const ms = (performance.now() - t0) / CHANGES;
  await wo.stop();
  db.close();
  rmSync(dir, { recursive: true, force: true });
  return ms;
}

/** Events per second delivered by one webhook channel. */
async function deliveryRate(): Promise<number> {
  let received = 0;
  let done: () => void = () => {};
  const all = new Promise<void>((r) => (done = r));
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200).end('ok');
      if (++received === EVENTS) done();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  const { db, dir } = tmpDb();
  const cfg = notificationsSchema.parse({
    webhooks: [{ name: 'cmms', url: `http://127.0.0.1:${port}/hook`, secret: SECRET }],
  });
  const notifier = new NotificationService({ queue: new NotifyQueue(db), config: cfg });
  const wo = new WorkOrderService({ db, inTransaction: notifier.enqueue });
  await wo.start();
  for (let i = 0; i < EVENTS; i++) wo.create({ title: `bench ${i}`, site: 's1' }, 'bench');
  const t0 = performance.now();
  await notifier.start();
  await all;
  const rate = EVENTS / ((performance.now() - t0) / 1000);
  await notifier.stop();
  await wo.stop();
  db.close();
  server.close();
  rmSync(dir, { recursive: true, force: true });
  return rate;
}

const base: number[] = [];
const queued: number[] = [];
const rates: number[] = [];
for (let r = 0; r < RUNS; r++) {
  base.push(await changeCost(false));
  queued.push(await changeCost(true));
  rates.push(await deliveryRate());
}
const out = {
  nproc: cpus().length,
  node: process.version,
  changes: CHANGES,
  events: EVENTS,
  msPerChangeWithout: Number(median(base).toFixed(3)),
  msPerChangeWithWebhook: Number(median(queued).toFixed(3)),
  deliveredPerSec: Math.round(median(rates)),
  runs: { base, queued, rates },
  loadavg: loadavg().map((x) => Number(x.toFixed(2))),
};
process.stdout.write(JSON.stringify(out, null, 2) + '\n');
