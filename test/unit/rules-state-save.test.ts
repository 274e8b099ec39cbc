import { describe, expect, it } from 'vitest';
import { ALARM_MIGRATIONS, AlarmService } from '../../gateway/src/alarms/index.js';
import { RuleEngine } from '../../gateway/src/rules/engine.js';
import { RulesRuntime } from '../../gateway/src/rules/runtime.js';
import { parseRules, type RulesConfigInput } from '../../gateway/src/rules/schema.js';
import type { RuleStateRow } from '../../gateway/src/rules/snapshot.js';
import type { DeviceFacts } from '../../gateway/src/rules/types.js';
import { openDb } from '../../gateway/src/storage/db.js';
import { pino } from 'pino';

/** Incremental rule-state saves: only the devices whose state changed since the last save. */

const T0 = Date.UTC(2026, 0, 1);
const MIN = 60_000;
const RULES: RulesConfigInput = {
  pack: [],
  custom: [
    {
      id: 't.high',
      kind: 'threshold',
      kinds: ['x'],
      class: 'key',
      metric: 'v',
      high: { value: 10, severity: 'warning', onDelayMs: 5 * MIN },
    },
    { id: 'offline', kind: 'stale', kinds: ['x'], class: 'routine', severity: 'info' },
  ],
};
const facts = (n: number): DeviceFacts[] =>
  Array.from({ length: n }, (_, i) => ({
    site: 's1',
    device: `d${i}`,
    kind: 'x',
    critical: false,
    reportIntervalSec: 600,
  }));

function engine(n = 5, register = true) {
  const list = facts(n);
  const byId = new Map(list.map((f) => [f.device, f]));
  const e = new RuleEngine({
    rules: parseRules(RULES),
    facts: { get: (_s, d) => byId.get(d), list: () => list },
  });
  if (register) for (const f of list) e.registerDevice(f, T0);
  return e;
}
const keys = (rows: RuleStateRow[]) => rows.map((r) => r.device).sort();

describe('incremental rule-state saves', () => {
  it('saves in slices round robin: every changed device once, none twice, none left behind', () => {
    const e = engine(10);
    const seen: string[] = [];
    for (let k = 0; k < 4; k++) {
      const rows = e.takeDirtyState(3).rows;
      expect(rows.length).toBeLessThanOrEqual(3);
      seen.push(...rows.map((r) => r.device));
    }
    expect(seen.sort()).toEqual(
      facts(10)
        .map((f) => f.device)
        .sort(),
    );
    expect(e.takeDirtyState(3).rows).toEqual([]);
    // The next slice starts where the last one stopped, so a busy device cannot starve the rest.
    for (const d of ['d0', 'd5', 'd9'])
      e.process({ site: 's1', kind: 'x', device: d, ts: T0 + MIN, fields: { v: 1 } });
    const a = keys(e.takeDirtyState(2).rows);
    const b = keys(e.takeDirtyState(2).rows);
    expect([...a, ...b].sort()).toEqual(['d0', 'd5', 'd9']);
  });

  it('writes every device once, then only those that changed', () => {
    const e = engine();
    expect(keys(e.takeDirtyState().rows)).toEqual(['d0', 'd1', 'd2', 'd3', 'd4']);
    expect(e.takeDirtyState().rows).toEqual([]);
    e.process({ site: 's1', kind: 'x', device: 'd3', ts: T0 + MIN, fields: { v: 5 } });
    const delta = e.takeDirtyState();
    expect(keys(delta.rows)).toEqual(['d3']);
    // One serialisation, the same shape as a full snapshot's device entry.
    const full = e.snapshotState().devices.find((d) => d.device === 'd3');
    expect(JSON.parse(delta.rows[0]!.json)).toEqual(full);
  });

  it('a tick that changes nothing costs no save; one that raises marks the device', () => {
    const e = engine();
    e.takeDirtyState();
    e.process({ site: 's1', kind: 'x', device: 'd1', ts: T0 + MIN, fields: { v: 12 } });
    e.takeDirtyState();
    e.tick(T0 + 2 * MIN);
    expect(e.takeDirtyState().rows).toEqual([]);
    e.tick(T0 + 6 * MIN); // d1's on-delay expires
    expect(keys(e.takeDirtyState().rows)).toEqual(['d1']);
    e.tick(T0 + 20 * MIN); // nothing due
    expect(e.takeDirtyState().rows).toEqual([]);
    e.tick(T0 + 32 * MIN); // every device silent for 3 intervals of 10 minutes goes offline
    expect(keys(e.takeDirtyState().rows)).toEqual(['d0', 'd1', 'd2', 'd3', 'd4']);
  });

  it('a failed write leaves the devices due for the next save', () => {
    const e = engine();
    e.takeDirtyState();
    e.process({ site: 's1', kind: 'x', device: 'd2', ts: T0 + MIN, fields: { v: 1 } });
    const lost = e.takeDirtyState();
    e.markDirty(lost);
    expect(keys(e.takeDirtyState().rows)).toEqual(['d2']);
  });

  it('a reload marks only the devices whose rules changed; a restore needs no save', () => {
    const e = engine(3);
    e.takeDirtyState();
    e.reload(parseRules(RULES), T0 + MIN);
    expect(e.takeDirtyState().rows).toEqual([]);
    const b = engine(3, false);
    b.restoreState(JSON.parse(JSON.stringify(e.snapshotState())) as ReturnType<RuleEngine['snapshotState']>);
    expect(b.takeDirtyState().rows).toEqual([]);
  });

  it('the runtime saves deltas into the alarm database and restores them after a restart', async () => {
    const db = openDb(':memory:', ALARM_MIGRATIONS);
    const alarms = new AlarmService({ db });
    await alarms.start();
    const list = facts(3);
    const byId = new Map(list.map((f) => [f.device, f]));
    let wall = T0 + MIN;
    const mk = () =>
      new RulesRuntime({
        rules: parseRules(RULES),
        facts: { get: (_s, d) => byId.get(d), list: () => list },
        store: alarms,
        listener: () => {},
        tickMs: 60_000,
        saveStateMs: 60_000,
        log: pino({ level: 'silent' }),
        wall: () => wall,
      });
    const a = mk();
    await a.start();
    a.onReading({ site: 's1', kind: 'x', device: 'd0', ts: T0 + MIN, fields: { v: 12 } });
    a.save();
    expect(a.health().lastSaveDevices).toBe(3);
    wall += MIN;
    a.onReading({ site: 's1', kind: 'x', device: 'd1', ts: T0 + 2 * MIN, fields: { v: 3 } });
    await a.stop();
    expect(a.health().lastSaveDevices).toBe(1);
    const b = mk();
    await b.start();
    const snap = b.engine.snapshotState();
    expect(snap.devices.map((d) => [d.device, d.lastTs])).toEqual([
      ['d0', T0 + MIN],
      ['d1', T0 + 2 * MIN],
      ['d2', null],
    ]);
    await b.stop();
    db.close();
  });
});
