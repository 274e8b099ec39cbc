import { describe, expect, it } from 'vitest';
import { DeviceStateStore } from '../../gateway/src/cluster/device-state-store.js';
import { CLUSTER_MIGRATIONS } from '../../gateway/src/cluster/store.js';
import type { SharedDb } from '../../gateway/src/storage/sql/shared-db.js';
import { sharedDbFixture } from '../fixtures/shared-db.js';

const fx = sharedDbFixture(CLUSTER_MIGRATIONS);

/** The moving device state (ADR 0151): one set of queries, run on both databases. */
describe.each([
  ['SQLite', () => fx.sqlite()],
  ['PostgreSQL', () => fx.postgres('device_state')],
])('cluster device state on %s', (_name, open: () => Promise<SharedDb>) => {
  it('upserts by device, keeps the newest, and loads a set of partitions with exact numbers', async () => {
    const db = (await open()).db;
    const store = new DeviceStateStore(db);
    const rules = Array.from({ length: 1200 }, (_, i) => ({
      site: 's1',
      device: `d-${i}`,
      partition: i % 8,
      state: JSON.stringify({ site: 's1', device: `d-${i}`, rules: {} }),
    }));
    const meters = [
      { site: 's1', device: 'wm-1', partition: 3, ts: 1_765_000_000_123.5, idx: 99_999.999 },
      { site: 's1', device: 'wm-2', partition: 5, ts: 1_765_000_000_000, idx: 0.001 },
    ];
    await store.upsert(rules, meters, 1000);
    await store.upsert([], [{ ...meters[0]!, ts: meters[0]!.ts + 1000, idx: 0.25 }], 2000);

    const got = await store.load([3]);
    expect(got.meters).toEqual([{ ...meters[0]!, ts: meters[0]!.ts + 1000, idx: 0.25 }]);
    expect(got.rules).toHaveLength(150);
    expect((await store.load([0, 5])).meters.map((m) => m.device)).toEqual(['wm-2']);
    expect(await store.load([])).toEqual({ rules: [], meters: [] });
  });
});
