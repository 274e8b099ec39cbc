import { describe, expect, it } from 'vitest';
import { NOTIFY_MIGRATIONS, NotifyQueue, type AdoptedRow } from '../../gateway/src/notifications/queue.js';
import { notificationsSchema } from '../../gateway/src/notifications/schema.js';
import { NotificationService } from '../../gateway/src/notifications/service.js';
import { openDb } from '../../gateway/src/storage/db.js';
import { WORKORDER_MIGRATIONS } from '../../gateway/src/workorders/index.js';

const row = (eventId: string): AdoptedRow => ({
  eventId,
  channel: 'webhook:cmms',
  event: 'ticket.created',
  ticketId: 'WO-000001',
  createdAt: 1_000,
  body: JSON.stringify({ id: eventId }),
  target: null,
});

/** The local side of ADR 0179: rows another member took over are `taken`, and come back if handed back. */
describe('notify queue: rows taken over by another member', () => {
  const queue = () => new NotifyQueue(openDb(':memory:', [...WORKORDER_MIGRATIONS, ...NOTIFY_MIGRATIONS]));

  it('markTaken takes pending rows out of the line only, and counts them', () => {
    const q = queue();
    q.adopt([row('evt_1'), row('evt_2'), row('evt_3')], 2_000);
    const [r1, r2, r3] = q.list('pending', undefined, 10).sort((a, b) => a.seq - b.seq);
    q.markDead(r3!.seq, 410, 'gone');
    expect(q.markTaken([r1!.seq, r3!.seq])).toBe(1);
    expect(q.head('webhook:cmms')?.eventId).toBe('evt_2');
    expect(q.list('taken', undefined, 10).map((r) => r.eventId)).toEqual(['evt_1']);
    expect(q.list('dead', undefined, 10).map((r) => r.eventId)).toEqual(['evt_3']);
    expect(q.stats().get('webhook:cmms')).toMatchObject({ pending: 1, dead: 1, taken: 1 });
    expect(r2).toBeDefined();
  });

  it('a taken row handed back (adopted again) is back in line with a fresh count; others stay as they are', () => {
    const q = queue();
    q.adopt([row('evt_1'), row('evt_2')], 2_000);
    const [r1, r2] = q.list('pending', undefined, 10).sort((a, b) => a.seq - b.seq);
    q.markRetry(r1!.seq, 503, 'not now', 9_000);
    q.markTaken([r1!.seq]);
    q.markDelivered(r2!.seq, 200, 3_000);
    expect(q.adopt([row('evt_1'), row('evt_2')], 5_000)).toBe(1);
    const back = q.list('pending', undefined, 10);
    expect(back.map((r) => [r.eventId, r.seq, r.attempts, r.nextAt, r.queuedAt])).toEqual([
      ['evt_1', r1!.seq, 0, 5_000, 5_000],
    ]);
    expect(q.list('delivered', undefined, 10).map((r) => r.eventId)).toEqual(['evt_2']);
  });
});

describe('notifications: rows taken over by another member do not stay for good', () => {
  it("the service's archive deletes taken rows older than retentionDays, and keeps newer ones", async () => {
    const DAY = 86_400_000;
    let now = 1_000;
    const db = openDb(':memory:', [...WORKORDER_MIGRATIONS, ...NOTIFY_MIGRATIONS]);
    const q = new NotifyQueue(db);
    q.adopt([row('evt_old')], now);
    now = 20 * DAY;
    q.adopt([row('evt_new')], now);
    q.markTaken(q.list('pending', undefined, 10).map((r) => r.seq));
    expect(q.list('taken', undefined, 10)).toHaveLength(2);
    const svc = new NotificationService({
      queue: q,
      config: notificationsSchema.parse({ retentionDays: 10 }),
      channels: [],
      now: () => now,
    });
    await svc.start();
    await svc.stop();
    expect(q.list('taken', undefined, 10).map((r) => r.eventId)).toEqual(['evt_new']);
    expect(q.stats().get('webhook:cmms')).toMatchObject({ taken: 1, pending: 0 });
  });
});
