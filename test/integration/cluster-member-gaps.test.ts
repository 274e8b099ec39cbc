import pg from 'pg';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterAll, describe, expect, it } from 'vitest';
import { OwnershipGate } from '../../gateway/src/cluster/gate.js';
import { LeaderDuties } from '../../gateway/src/cluster/leader.js';
import { ClusterMember } from '../../gateway/src/cluster/member.js';
import { CLUSTER_MIGRATIONS } from '../../gateway/src/cluster/store.js';
import { DurableWatermark } from '../../gateway/src/cluster/watermark.js';
import { SharedDb } from '../../gateway/src/storage/sql/shared-db.js';
import { waitFor } from '../fixtures/ports.js';
import { sharedDbFixture } from '../fixtures/shared-db.js';

/** The member's fence and deadline, reached from the test (no public way to make a member miss it). */
interface Fenceable {
  deadline: number;
  fence(): void;
}

const log = pino({ level: 'silent' });
const fx = sharedDbFixture(CLUSTER_MIGRATIONS);
const opened: SharedDb[] = [];
afterAll(async () => {
  for (const s of opened) await s.stop();
});

/** A shared store on its own database of the fixture's PostgreSQL; returns it and its URL. */
async function database(name: string): Promise<{ shared: SharedDb; url: string }> {
  const url = await fx.pg().createDatabase(name);
  const shared = new SharedDb({ dataDir: '/nonexistent', postgresUrl: url, log }, CLUSTER_MIGRATIONS);
  opened.push(shared);
  await shared.start();
  return { shared, url };
}

/**
 * A member over a real PostgreSQL with a real gate; its outbox is always empty (every line written
 * at once), so the watermark is the latest sample's time.
 */
function member(
  shared: SharedDb,
  instanceId: string,
  failoverMs: number,
  records?: ConstructorParameters<typeof ClusterMember>[0]['records'],
) {
  const gate = new OwnershipGate(2, { bytes: 1 << 20, windowMs: 60_000 });
  const empty = { stats: () => ({ pendingLines: 0, committedLines: 0 }), storedLines: () => 0 };
  const m = new ClusterMember({
    settings: { instanceId, clientId: `c-${instanceId}`, partitions: 2, failoverMs, replaySlackMs: 0 },
    db: () => shared.db,
    gate,
    watermark: new DurableWatermark(empty, Date.now()),
    duties: new LeaderDuties(log),
    log,
    metrics: new Registry(),
    httpUrl: () => undefined,
    ...(records ? { records } : {}),
  });
  return { m, gate };
}

async function query<R extends pg.QueryResultRow>(url: string, text: string): Promise<R[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query<R>(text)).rows;
  } finally {
    await c.end();
  }
}

describe('cluster member lease gaps', () => {
  it('after a fence, the watermark recorded for a partition it still holds is not later than the fence (ADR 0167)', async () => {
    const { shared } = await database('gap_fence');
    const { m, gate } = member(shared, 'gw-a', 5_000);
    // Where each take replays from: the watermark the previous holder recorded (here: itself).
    const froms: Array<Map<number, number>> = [];
    const acquire = gate.acquire.bind(gate);
    gate.acquire = (parts) => {
      froms.push(new Map(parts));
      return acquire(parts);
    };
    const takenAt = Date.now();
    await m.start();
    try {
      expect(gate.ownedList()).toEqual([0, 1]);
      // Right after a renewal (every second here): the next one is most of a second away.
      const age = () =>
        (m.health() as unknown as { lastHeartbeatAgeMs: number | null }).lastHeartbeatAgeMs ?? 1e9;
      await waitFor(() => age() < 150, 10_000, 'a fresh renewal');
      const fenced = m as unknown as Fenceable;
      fenced.deadline = 0;
      fenced.fence();
      const fencedAt = Date.now();
      expect(gate.ownedList()).toEqual([]);
      // The next renewal succeeds: the partitions it still holds go back, and are taken again.
      await waitFor(() => froms.length >= 2, 10_000, 'the partitions taken again');
      for (const p of [0, 1]) {
        const from = froms[1]!.get(p)!;
        // Readings after the fence were dropped here: the replay must start at the fence at the latest
        // (a few ms for the measured clock offset).
        expect(from).toBeLessThanOrEqual(fencedAt + 20);
        expect(from).toBeGreaterThan(takenAt);
      }
    } finally {
      await m.stop();
    }
  }, 60_000);

  it('a renewal that hangs past stop() claims no partition and no leadership after it (ADR 0168)', async () => {
    const { shared, url } = await database('gap_stop');
    const { m, gate } = member(shared, 'gw-b', 2_000);
    await m.start();
    const locker = new pg.Client({ connectionString: url });
    await locker.connect();
    let locked = false;
    try {
      expect(gate.ownedList()).toEqual([0, 1]);
      // PostgreSQL stalls the member's next heartbeat: its row is locked by another transaction.
      await locker.query('begin');
      locked = true;
      await locker.query(`select * from cluster_members where instance_id = 'gw-b' for update`);
      const waiting = async () =>
        (
          await query<{ n: string }>(
            url,
            `select count(*) as n from pg_stat_activity
              where datname = current_database() and wait_event_type = 'Lock'`,
          )
        )[0]!.n;
      await waitFor(async () => Number(await waiting()) >= 1, 10_000, 'the heartbeat hangs');
      // stop() gives up on the hung renewal after the TTL, hands every partition back, then its
      // leave() waits behind the same lock.
      const stopping = m.stop();
      await waitFor(async () => Number(await waiting()) >= 2, 15_000, 'the leave waits too');
      const held = await query<{ partition: number }>(
        url,
        `select partition from cluster_partitions where owner = 'gw-b' and expires_at > 0`,
      );
      expect(held).toEqual([]);
      // PostgreSQL answers again: the hung heartbeat completes first, and its renewal runs on.
      await locker.query('commit');
      locked = false;
      await stopping;
      // The rest of the hung renewal: a few quick statements.
      await new Promise((r) => setTimeout(r, 1_500));
      expect(gate.ownedList()).toEqual([]);
      const owned = await query<{ partition: number }>(
        url,
        `select partition from cluster_partitions where owner = 'gw-b'`,
      );
      expect(owned).toEqual([]);
      const leader = await query<{ owner: string | null }>(url, `select owner from cluster_leader`);
      expect(leader[0]!.owner).not.toBe('gw-b');
    } finally {
      if (locked) await locker.query('rollback').catch(() => undefined);
      await locker.end();
      await m.stop();
    }
  }, 60_000);

  it('a take whose adoption outlasts the lease does not process the partitions: another member may hold them by then', async () => {
    const { shared } = await database('gap_slow_take');
    // A's first adoption waits longer than the lease (a slow flush of its view writer, PostgreSQL slow).
    let slow = true;
    const records = {
      adopt: async () => {
        if (!slow) return;
        slow = false;
        await new Promise((r) => setTimeout(r, 2_600));
      },
      evict: () => undefined,
      flush: async () => undefined,
    };
    const a = member(shared, 'gw-a', 2_000, records);
    const b = member(shared, 'gw-b', 2_000);
    const aStarted = a.m.start();
    // B joins while A waits: it claims a partition once A's leases have run out in PostgreSQL.
    await new Promise((r) => setTimeout(r, 300));
    await b.m.start();
    try {
      await aStarted;
      await waitFor(() => b.gate.ownedList().length > 0, 10_000, 'B takes a partition');
      // Never both processing one partition.
      const both = a.gate.ownedList().filter((p) => b.gate.owned[p] === 1);
      expect(both).toEqual([]);
    } finally {
      await a.m.stop();
      await b.m.stop();
    }
  }, 60_000);
});
