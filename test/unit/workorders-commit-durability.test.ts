import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { AlarmEvent } from '../../gateway/src/alarms/types.js';
import { openDb, type Db } from '../../gateway/src/storage/db.js';
import {
  WORKORDER_MIGRATIONS,
  WorkOrderService,
  workordersSchema,
} from '../../gateway/src/workorders/index.js';
import { testAlarm } from '../fixtures/alarm.js';

/**
 * workorders.db at synchronous=NORMAL (ADR 0091): what alarms and timers change commits without an
 * fsync, what a person is answered commits with one, and a ticket lost with the last commits is
 * raised again at start from the alarms still active. On a real SQLite file.
 */
const T0 = Date.UTC(2026, 0, 1, 8);
const dirs: string[] = [];
const dbs: Db[] = [];
afterEach(() => {
  for (const db of dbs.splice(0)) if (db.open) db.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function setup(file?: string) {
  const f = file ?? join(mkdtempSync(join(tmpdir(), 'fgw-wo-sync-')), 'workorders.db');
  if (!file) dirs.push(join(f, '..'));
  const db = openDb(f, WORKORDER_MIGRATIONS, 'normal');
  dbs.push(db);
  /** The connection's synchronous level inside each committed transaction (1 NORMAL, 2 FULL). */
  const levels: number[] = [];
  const svc = new WorkOrderService({
    db,
    config: workordersSchema.parse({}),
    now: () => T0,
    inTransaction: () => void levels.push(db.pragma('synchronous', { simple: true }) as number),
  });
  return { f, db, svc, levels };
}
const raise = (a = testAlarm()): AlarmEvent => ({ type: 'raise', ts: a.raisedAt, alarm: { ...a } });

describe('ticket commits and their durability', () => {
  it('commits alarm-made changes without an fsync and people’s actions with one', async () => {
    const { svc, levels, db } = setup();
    await svc.start();
    const [e] = svc.applyAlarmEvents([raise()]);
    svc.act(e!.ticket.id, { action: 'acknowledge', actor: 'eve' });
    svc.create({ title: 'Replace the dosing pump hose', site: 'estate' }, 'eve');
    expect(levels).toEqual([1, 2, 2]);
    // Back to NORMAL after a person's action.
    expect(db.pragma('synchronous', { simple: true })).toBe(1);
  });

  it('raises at start the ticket of an active alarm that no ticket lists, once', async () => {
    const { f, db, svc } = setup();
    await svc.start();
    const kept = testAlarm({ device: 'tank-1' });
    const lost = testAlarm({ device: 'tank-2' });
    const shelved = testAlarm({ device: 'tank-3', shelved: true });
    const mild = testAlarm({ device: 'tank-4', class: 'routine', severity: 'info' });
    svc.applyAlarmEvents([raise(kept)]);
    await svc.stop();
    db.close();

    // What a power cut leaves: tank-2's alarm survived in alarms.db, its ticket's commit did not.
    const again = setup(f);
    await again.svc.start();
    const active = [kept, lost, shelved, mild];
    expect(again.svc.reconcileAlarms(active)).toBe(1);
    const tickets = again.svc.list({ limit: 10 });
    expect(tickets.map((t) => t.device).sort()).toEqual(['tank-1', 'tank-2']);
    expect(tickets.find((t) => t.device === 'tank-2')!.alarmIds).toEqual([lost.id]);
    expect(again.svc.health()).toMatchObject({ reconciled: 1 });
    // Nothing twice, and a ticket that lists its alarm is left alone (no "alarm returned" line).
    expect(again.svc.reconcileAlarms(active)).toBe(0);
    const actions = tickets.flatMap((t) => again.svc.get(t.id)!.history.map((h) => h.action));
    expect(actions).not.toContain('alarm-returned');
  });
});
