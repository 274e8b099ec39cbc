import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { configSchema, type GatewayConfig } from '../../gateway/src/config/schema.js';
import { FLEET_STEPS } from '../../gateway/src/fleet/migrations.js';
import { FleetService } from '../../gateway/src/fleet/service.js';
import { FleetStore } from '../../gateway/src/fleet/store.js';
import { SharedDb } from '../../gateway/src/storage/sql/shared-db.js';
import { sharedDbFixture } from '../fixtures/shared-db.js';
import { waitFor } from '../fixtures/ports.js';

// The runtime configuration's store, written once, run on SQLite and on PostgreSQL (real servers).
const log = pino({ level: 'silent' });
const override = (value: number) => ({
  scope: 'device',
  target: 'estate/tank-1',
  rule: 'chlorine.free.low',
  set: { low: { value } },
});

async function exercise(shared: SharedDb): Promise<void> {
  const store = new FleetStore(shared.db);
  expect(await store.lastChangeId()).toBe(0);
  const a = await store.put('rule-override', 'k1', override(0.5), 'erin', 'first', 1000);
  expect(a).toMatchObject({ actor: 'erin', before: null, after: override(0.5), note: 'first', at: 1000 });
  // The same value again records nothing.
  expect(await store.put('rule-override', 'k1', override(0.5), 'erin')).toBeUndefined();
  const b = await store.put('rule-override', 'k1', override(0.6), 'val', null, 2000);
  expect(b).toMatchObject({ before: override(0.5), after: override(0.6) });
  await store.put('on-call', 'week', { contact: 'li' }, 'admin', null, 3000);
  const removed = await store.put('rule-override', 'k1', null, 'erin', null, 4000);
  expect(removed).toMatchObject({ before: override(0.6), after: null });
  expect(await store.list('rule-override')).toEqual([]);
  expect(await store.list()).toEqual([
    { entity: 'on-call', key: 'week', value: { contact: 'li' }, updatedAt: 3000, updatedBy: 'admin' },
  ]);
  const h = await store.history({ entity: 'rule-override' });
  expect(h.map((c) => [c.actor, c.at])).toEqual([
    ['erin', 4000],
    ['val', 2000],
    ['erin', 1000],
  ]);
  expect(await store.history({ key: 'week' })).toHaveLength(1);
  expect(await store.change(b!.id)).toEqual(b);
  expect(await store.lastChangeId()).toBe(removed!.id);
  // A channel's secrets: written with its setting, never in the history; kept when not given.
  const w = await store.putWithSecrets(
    'channel',
    'webhook:ops',
    { kind: 'x' },
    'sealed-1',
    'admin',
    null,
    5000,
  );
  expect(w).toMatchObject({ before: null, after: { kind: 'x' } });
  expect(await store.secrets('channel')).toEqual(new Map([['webhook:ops', 'sealed-1']]));
  await store.putWithSecrets('channel', 'webhook:ops', { kind: 'y' }, undefined, 'admin');
  expect((await store.secrets('channel')).get('webhook:ops')).toBe('sealed-1');
  expect(JSON.stringify(await store.history({ entity: 'channel' }))).not.toContain('sealed-1');
  await store.putWithSecrets('channel', 'webhook:ops', null, undefined, 'admin');
  expect((await store.secrets('channel')).size).toBe(0);
}

/** The gateway's side of a fleet service: the file's config, and what was applied. */
function host(file: GatewayConfig) {
  const applied: GatewayConfig[] = [];
  return { applied, fileConfig: () => file, apply: (c: GatewayConfig) => void applied.push(c) };
}

describe('runtime configuration store: SQLite and PostgreSQL', () => {
  const db = sharedDbFixture(FLEET_STEPS);

  it('settings and their history on SQLite', async () => {
    await exercise(await db.sqlite());
  });

  it('settings and their history on PostgreSQL', async () => {
    await exercise(await db.postgres('fleet_store'));
  });

  it("two instances on one PostgreSQL database: one's change reaches the other without a restart", async () => {
    const url = await db.pg().createDatabase('fleet_cluster');
    const file = configSchema.parse({
      devices: [{ id: 'tank-1', site: 'estate', kind: 'chlorination' }],
    });
    const dbs = [0, 1].map(
      () => new SharedDb({ dataDir: '/nonexistent', postgresUrl: url, log }, FLEET_STEPS),
    );
    await Promise.all(dbs.map((d) => d.start()));
    const hosts = [host(file), host(file)];
    const services = dbs.map((d, i) => new FleetService(new FleetStore(d.db), hosts[i]!, log, 100));
    for (const s of services) await s.start();
    try {
      const c = await services[0]!.setOverride(override(0.45), 'erin');
      expect(c?.actor).toBe('erin');
      expect(hosts[0]!.applied.at(-1)!.rules.overrides).toEqual([
        { rule: 'chlorine.free.low', site: 'estate', device: 'tank-1', set: { low: { value: 0.45 } } },
      ]);
      await waitFor(
        () => hosts[1]!.applied.at(-1)?.rules.overrides.length === 1,
        10_000,
        'the second instance to apply the change',
      );
      expect(hosts[1]!.applied.at(-1)!.rules.overrides).toEqual(hosts[0]!.applied.at(-1)!.rules.overrides);
      expect(services[1]!.listOverrides()).toHaveLength(1);
      // Refused changes are not written: the other instance sees nothing new.
      await expect(
        services[1]!.setOverride({ ...override(0.45), set: { low: { value: -1, severity: 'loud' } } }, 'val'),
      ).rejects.toThrow(/set\.low\.severity/);
      expect(await new FleetStore(dbs[0]!.db).history({})).toHaveLength(1);
      // A webhook with its secret set on one instance is used by the other.
      const secret = 'cluster-secret-0123456789';
      await services[0]!.putWebhook({ name: 'ops', url: 'http://127.0.0.1:9/ops', secret }, 'admin');
      await waitFor(
        () =>
          hosts[1]!.applied
            .at(-1)
            ?.notifications.webhooks.some((x) => x.name === 'ops' && x.secret === secret) ?? false,
        10_000,
        'the webhook on the second instance',
      );
    } finally {
      for (const s of services) await s.stop();
      await Promise.all(dbs.map((d) => d.stop()));
    }
  });
});
