import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { ALARM_MIGRATIONS, AlarmService } from '../../gateway/src/alarms/index.js';
import { outboxSchema } from '../../gateway/src/config/schema.js';
import { RuleEngine } from '../../gateway/src/rules/engine.js';
import { RULE_STATE_PREFIX, RulesRuntime } from '../../gateway/src/rules/runtime.js';
import { parseRules, type RulesConfigInput } from '../../gateway/src/rules/schema.js';
import type { DeviceFacts, Transition } from '../../gateway/src/rules/types.js';
import { openDb } from '../../gateway/src/storage/db.js';
import { Outbox } from '../../gateway/src/storage/outbox.js';

/** Rule state committed with the readings (ADR 0080): what changed per commit, and reconciliation with the alarms. */

const T0 = Date.UTC(2026, 0, 1);
const SEC = 1000;
const MIN = 60_000;
const RULES: RulesConfigInput = {
  pack: [],
  custom: [
    {
      id: 'door',
      kind: 'state',
      kinds: ['x'],
      class: 'routine',
      metric: 'open',
      severity: 'warning',
      onDelayMs: 20 * SEC,
    },
    {
      id: 't.high',
      kind: 'threshold',
      kinds: ['x'],
      class: 'key',
      metric: 'v',
      high: { value: 10, severity: 'warning' },
    },
  ],
};
const facts: DeviceFacts[] = ['d0', 'd1', 'd2'].map((device) => ({
  site: 's1',
  device,
  kind: 'x',
  critical: false,
  reportIntervalSec: 600,
}));
const byId = new Map(facts.map((f) => [f.device, f]));
const factsLookup = { get: (_s: string, d: string) => byId.get(d), list: () => facts };

function engine(out: Transition[] = []) {
  const e = new RuleEngine({ rules: parseRules(RULES), facts: factsLookup, listener: (b) => out.push(...b) });
  for (const f of facts) e.registerDevice(f, T0);
  return e;
}

function taken(e: RuleEngine): Map<string, string> {
  const m = new Map<string, string>();
  e.takeChanged('p:', (k, v) => m.set(k, String(v)));
  return m;
}

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('rule state handed over per commit', () => {
  it('hands over only the devices changed since the last commit, serialised as a snapshot entry', () => {
    const e = engine();
    e.trackChanges();
    // New devices: their anchors are the initial values, nothing to commit yet.
    expect(taken(e).size).toBe(0);
    e.process({ site: 's1', kind: 'x', device: 'd1', ts: T0 + SEC, fields: { open: true } });
    e.process({ site: 's1', kind: 'x', device: 'd1', ts: T0 + 2 * SEC, fields: { open: true } });
    expect(e.hasChanged()).toBe(true);
    const m = taken(e);
    expect([...m.keys()]).toEqual(['p:s1/d1']);
    const full = e.snapshotState().devices.find((d) => d.device === 'd1');
    expect(JSON.parse(m.get('p:s1/d1')!)).toEqual(full);
    expect(e.hasChanged()).toBe(false);
  });

  it('a change of volatile fields only waits for the periodic save; an anchor’s change goes at once', () => {
    const e = engine();
    e.trackChanges();
    // Within limits: only the latest value (volatile) and lastTs change.
    e.process({ site: 's1', kind: 'x', device: 'd0', ts: T0 + SEC, fields: { v: 1 } });
    expect(taken(e).size).toBe(0);
    // The periodic save takes every dirty device (here all three, never saved).
    const periodic = new Map<string, unknown>();
    expect(e.takeDirtySlots(10, 'p:', (k, v) => periodic.set(k, v))).toBe(3);
    expect(JSON.parse(String(periodic.get('p:s1/d0'))).lastTs).toBe(T0 + SEC);
    expect(e.dirtyCount()).toBe(0);
    // Above the limit: the level starts holding (an anchor), handed over with this commit.
    e.process({ site: 's1', kind: 'x', device: 'd0', ts: T0 + 2 * SEC, fields: { v: 12 } });
    const seen: unknown[] = [];
    e.takeChanged('p:', (_k, v) => seen.push(v));
    expect(seen).toHaveLength(1);
    // The same object each time: nothing is built per reading or per commit but the JSON itself.
    expect(seen[0]).toBe(periodic.get('p:s1/d0'));
  });
});

describe('reconciling restored rule state with the active alarms', () => {
  it('a raise whose alarm was lost is raised again at the delay’s own time', () => {
    const out: Transition[] = [];
    const e = engine(out);
    e.process({ site: 's1', kind: 'x', device: 'd0', ts: T0, fields: { open: true } });
    e.tick(T0 + 21 * SEC);
    expect(out.map((t) => [t.type, t.ts])).toEqual([['raise', T0 + 20 * SEC]]);
    const b = engine(out);
    b.restoreState(e.snapshotState());
    // No active alarm: the commit of the alarm did not survive.
    expect(b.reconcile(new Map())).toEqual({ forgotten: 1, adopted: 0 });
    out.length = 0;
    b.tick(T0 + 25 * SEC);
    expect(out.map((t) => [t.type, t.device, t.ts])).toEqual([['raise', 'd0', T0 + 20 * SEC]]);
  });

  it('an active alarm the rule state does not know of is adopted: no second raise, and it clears', () => {
    const out: Transition[] = [];
    const e = engine(out);
    e.process({ site: 's1', kind: 'x', device: 'd2', ts: T0, fields: { v: 12 } });
    const before = e.snapshotState();
    expect(out).toHaveLength(1);
    // Restored from state older than the alarm (the alarm's commit won the race).
    const b = engine(out);
    const old = engine();
    b.restoreState(old.snapshotState());
    expect(b.reconcile(new Map([['s1/d2|t.high', 2]]))).toEqual({ forgotten: 0, adopted: 1 });
    out.length = 0;
    b.process({ site: 's1', kind: 'x', device: 'd2', ts: T0 + MIN, fields: { v: 13 } });
    expect(out).toEqual([]);
    b.process({ site: 's1', kind: 'x', device: 'd2', ts: T0 + 2 * MIN, fields: { v: 3 } });
    expect(out.map((t) => t.type)).toEqual(['clear']);
    // Agreement changes nothing.
    const c = engine();
    c.restoreState(before);
    expect(c.reconcile(new Map([['s1/d2|t.high', 2]]))).toEqual({ forgotten: 0, adopted: 0 });
  });
});

describe('the runtime with the outbox', () => {
  it('commits a running on-delay with the readings and finishes it after a restart, once', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rules-durable-'));
    dirs.push(dir);
    const log = pino({ level: 'silent' });
    const cfg = outboxSchema.parse({ commitThread: false });
    let wall = T0;
    const raised: Transition[] = [];
    const mk = async (outbox: Outbox, alarms: AlarmService) => {
      const r = new RulesRuntime({
        rules: parseRules(RULES),
        facts: factsLookup,
        store: alarms,
        listener: (b) => {
          raised.push(...b);
          alarms.handle(b);
        },
        tickMs: 60_000,
        saveStateMs: 60_000,
        log,
        wall: () => wall,
        durable: outbox,
      });
      await r.start();
      return r;
    };
    const db1 = openDb(join(dir, 'alarms.db'), ALARM_MIGRATIONS);
    const alarms1 = new AlarmService({ db: db1, now: () => wall });
    await alarms1.start();
    const ob1 = new Outbox(cfg, dir, log);
    await ob1.start();
    const r1 = await mk(ob1, alarms1);
    r1.onReading({ site: 's1', kind: 'x', device: 'd0', ts: T0, fields: { open: true } });
    ob1.append('x v=1 1\n');
    await ob1.flush();
    // A crash: nothing stops cleanly, nothing is saved afterwards.
    db1.close();
    const raw = openDb(join(dir, 'outbox.db'), []);
    const rows = raw.prepare('SELECT body FROM state_log').pluck().all() as string[];
    raw.close();
    expect(rows.join('')).toContain(`${RULE_STATE_PREFIX}s1/d0\t`);

    wall = T0 + 10 * SEC;
    const db2 = openDb(join(dir, 'alarms.db'), ALARM_MIGRATIONS);
    const alarms2 = new AlarmService({ db: db2, now: () => wall });
    await alarms2.start();
    const ob2 = new Outbox(cfg, dir, log);
    await ob2.start();
    const r2 = await mk(ob2, alarms2);
    wall = T0 + 21 * SEC;
    r2.tick();
    alarms2.flush();
    expect(raised.map((t) => [t.type, t.device, t.ts])).toEqual([['raise', 'd0', T0 + 20 * SEC]]);
    r2.tick();
    expect(raised).toHaveLength(1);
    await r2.stop();
    await alarms2.stop();
    await ob2.stop();
    db2.close();
    await ob1.stop().catch(() => {});
  });
});
