import { describe, expect, it } from 'vitest';
import type { DeliveryFence } from '../../gateway/src/notifications/fence.js';
import type { Channel, Outcome } from '../../gateway/src/notifications/channels.js';
import {
  NOTIFY_MIGRATIONS,
  NotificationService,
  NotifyQueue,
  notificationsSchema,
  type QueueRow,
} from '../../gateway/src/notifications/index.js';
import { openDb } from '../../gateway/src/storage/db.js';
import { WORKORDER_MIGRATIONS } from '../../gateway/src/workorders/index.js';
import { waitFor } from '../fixtures/ports.js';

/** A channel whose one attempt takes `ms` (an SMTP server slow to answer), with e-mail's time limit. */
class SlowChannel implements Channel {
  readonly channel = 'email:ops';
  readonly retry = { minMs: 10, maxMs: 40 };
  readonly maxAttempts = undefined;
  readonly maxAgeHours = 72;
  readonly timeoutMs = 90_000;
  constructor(private readonly ms: number) {}
  start(): void {}
  stop(): void {}
  wants() {
    return {};
  }
  async deliver(): Promise<Outcome> {
    await new Promise((r) => setTimeout(r, this.ms));
    return { kind: 'delivered', status: 250 };
  }
}

/** The shared copy's side, recorded (the statements themselves are tested on PostgreSQL elsewhere). */
class RecordingFence implements DeliveryFence {
  readonly claims: Array<{ at: number; ms: number }> = [];
  releases = 0;
  async claim(_row: QueueRow, attemptMs: number): Promise<'go'> {
    this.claims.push({ at: Date.now(), ms: attemptMs });
    return 'go';
  }
  async release(): Promise<void> {
    this.releases++;
  }
  async taken(): Promise<Set<number>> {
    return new Set();
  }
}

/**
 * ADR 0179 addendum: a claim is short and renewed while its attempt runs, so a member killed in the
 * middle of a long attempt (e-mail: up to 90 s) blocks the takeover of that row for one claim's
 * length, not for the channel's whole time limit.
 */
describe('notification claims: short, renewed while the attempt runs', () => {
  it('a slow attempt is claimed for at most claimMs at a time, renewed until it ends, then released', async () => {
    const db = openDb(':memory:', [...WORKORDER_MIGRATIONS, ...NOTIFY_MIGRATIONS]);
    const queue = new NotifyQueue(db);
    queue.adopt(
      [
        {
          eventId: 'evt_slow',
          channel: 'email:ops',
          event: 'ticket.created',
          ticketId: 'WO-000001',
          createdAt: 1_000,
          body: '{}',
          target: 'ops@example.org',
        },
      ],
      Date.now(),
    );
    const fence = new RecordingFence();
    const svc = new NotificationService({
      queue,
      config: notificationsSchema.parse({ pollMs: 50 }),
      channels: [new SlowChannel(600)],
      fence,
      claimMs: 150,
    });
    await svc.start();
    try {
      await waitFor(() => fence.releases === 1, 5_000, 'the attempt ended');
    } finally {
      await svc.stop();
    }
    expect(queue.stats().get('email:ops')).toMatchObject({ delivered: 1, pending: 0 });
    // Every claim short, whatever the channel's time limit ...
    for (const c of fence.claims) expect(c.ms).toBeLessThanOrEqual(150);
    // ... and renewed while the 600 ms attempt ran (every 50 ms: about a dozen; a busy machine fewer).
    expect(fence.claims.length).toBeGreaterThanOrEqual(3);
    // No renewal after the attempt: the claims stop with the release.
    const n = fence.claims.length;
    await new Promise((r) => setTimeout(r, 250));
    expect(fence.claims.length).toBe(n);
  });
});
