import { describe, expect, it } from 'vitest';
import { openDb } from '../../gateway/src/storage/db.js';
import { WORKORDER_MIGRATIONS, WorkOrderService } from '../../gateway/src/workorders/index.js';
import {
  NOTIFY_MIGRATIONS,
  NotificationService,
  NotifyQueue,
  notificationsSchema,
} from '../../gateway/src/notifications/index.js';
import type { Channel, Outcome } from '../../gateway/src/notifications/channels.js';
import type { QueueRow } from '../../gateway/src/notifications/queue.js';
import { waitFor } from '../fixtures/ports.js';

/** The delivery worker's decisions with a scripted channel (no network): order, retries, giving up, stop. */
class ScriptedChannel implements Channel {
  readonly channel = 'webhook:fake';
  readonly retry = { minMs: 10, maxMs: 40 };
  readonly sent: Array<{ eventId: string; attempt: number; at: number }> = [];
  constructor(
    readonly script: Outcome[],
    readonly maxAttempts: number | undefined = undefined,
    readonly maxAgeHours = 72,
  ) {}
  start(): void {}
  stop(): void {}
  wants() {
    return {};
  }
  async deliver(row: QueueRow, now: number, _signal?: AbortSignal): Promise<Outcome> {
    this.sent.push({ eventId: row.eventId, attempt: row.attempts + 1, at: now });
    return this.script.shift() ?? { kind: 'delivered', status: 200 };
  }
}

async function setup(ch: Channel, now: () => number = Date.now) {
  const db = openDb(':memory:', [...WORKORDER_MIGRATIONS, ...NOTIFY_MIGRATIONS]);
  const queue = new NotifyQueue(db);
  const svc = new NotificationService({
    queue,
    config: notificationsSchema.parse({ pollMs: 50 }),
    channels: [ch],
    now,
  });
  const wo = new WorkOrderService({ db, inTransaction: svc.enqueue });
  await wo.start();
  return { queue, svc, wo };
}

describe('delivery worker', () => {
  it('holds the line on a failure and delivers in order, each once', async () => {
    const ch = new ScriptedChannel([
      { kind: 'retry', status: null, error: 'ECONNREFUSED' },
      { kind: 'retry', status: 503, error: '503', afterMs: 30 },
    ]);
    const { queue, svc, wo } = await setup(ch);
    const a = wo.create({ title: 'a', site: 's' }, 'eve');
    const b = wo.create({ title: 'b', site: 's' }, 'eve');
    await svc.start();
    await waitFor(() => queue.stats().get('webhook:fake')?.delivered === 2, 10_000, 'both delivered');
    const ids = queue.list('delivered', undefined, 10).reverse();
    expect(ids.map((r) => r.ticketId)).toEqual([a.id, b.id]);
    // a was tried three times before b was tried at all.
    expect(ch.sent.map((s) => [s.eventId, s.attempt])).toEqual([
      [ids[0]!.eventId, 1],
      [ids[0]!.eventId, 2],
      [ids[0]!.eventId, 3],
      [ids[1]!.eventId, 1],
    ]);
    // Retry-After (30 ms) was waited out.
    expect(ch.sent[2]!.at - ch.sent[1]!.at).toBeGreaterThanOrEqual(30);
    expect(svc.health()).toMatchObject({
      state: 'ok',
      channels: { 'webhook:fake': { failures: 2, pending: 0 } },
    });
    await svc.stop();
    await wo.stop();
  });

  it('parks an event after maxAttempts and moves on', async () => {
    const fail: Outcome = { kind: 'retry', status: 500, error: 'boom' };
    const ch = new ScriptedChannel([fail, fail, fail], 3);
    const { queue, svc, wo } = await setup(ch);
    wo.create({ title: 'a', site: 's' }, 'eve');
    wo.create({ title: 'b', site: 's' }, 'eve');
    await svc.start();
    await waitFor(() => queue.stats().get('webhook:fake')?.delivered === 1, 10_000, 'second delivered');
    const [dead] = queue.list('dead', undefined, 10);
    expect(dead).toMatchObject({ attempts: 3, lastStatus: 500 });
    expect(dead!.lastError).toBe('gave up after 3 attempts: boom');
    expect(svc.health().state).toBe('degraded');
    await svc.stop();
    await wo.stop();
  });

  it('parks an event older than maxAgeHours', async () => {
    let clock = Date.now();
    const ch = new ScriptedChannel([{ kind: 'retry', status: null, error: 'down' }], undefined, 1);
    const { queue, svc, wo } = await setup(ch, () => clock);
    wo.create({ title: 'a', site: 's' }, 'eve');
    clock += 2 * 3_600_000;
    await svc.start();
    await waitFor(() => queue.list('dead', undefined, 10).length === 1, 10_000, 'parked');
    expect(queue.list('dead', undefined, 10)[0]!.lastError).toBe('gave up after 1 attempts: down');
    await svc.stop();
    await wo.stop();
  });

  it('aborts an attempt in flight on stop() and leaves it pending, to be sent again after a restart', async () => {
    let inFlight = false;
    const ch = new ScriptedChannel([]);
    ch.deliver = (_row: QueueRow, _now: number, signal?: AbortSignal) =>
      new Promise<Outcome>((resolve) => {
        inFlight = true;
        signal!.addEventListener('abort', () => resolve({ kind: 'retry', status: null, error: 'aborted' }));
      });
    const { queue, svc, wo } = await setup(ch);
    wo.create({ title: 'a', site: 's' }, 'eve');
    await svc.start();
    await waitFor(() => inFlight, 5000, 'in flight');
    await svc.stop();
    expect(queue.head('webhook:fake')).toMatchObject({ state: 'pending', attempts: 0, lastError: null });
    await wo.stop();
  });
});
