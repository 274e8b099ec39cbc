import type { Db, Migration } from '../storage/db.js';
import type { EngineSnapshot, RuleStateRow } from '../rules/snapshot.js';
import type { Alarm, AlarmEvent, Incident, Shelf } from './types.js';
import type { MaintenanceWindow, WindowSchedule } from './windows.js';

/** Nothing is deleted: alarms, their events, incidents and shelves are history ("不得丢失"). */
export const ALARM_MIGRATIONS: Migration[] = [
  {
    version: 1,
    sql: `
      CREATE TABLE alarms (
        id TEXT PRIMARY KEY, site TEXT NOT NULL, device TEXT NOT NULL, kind TEXT NOT NULL,
        rule TEXT NOT NULL, class TEXT NOT NULL, severity TEXT NOT NULL, state TEXT NOT NULL,
        value TEXT, message TEXT NOT NULL, raised_at INTEGER NOT NULL, cleared_at INTEGER,
        acknowledged_at INTEGER, acknowledged_by TEXT, ack_note TEXT, incident_id TEXT,
        shelved INTEGER NOT NULL, critical INTEGER NOT NULL, updated_at INTEGER NOT NULL
      );
      CREATE INDEX alarms_state ON alarms(state);
      CREATE INDEX alarms_raised ON alarms(raised_at);
      CREATE INDEX alarms_site_device ON alarms(site, device, raised_at);
      CREATE TABLE alarm_events (
        seq INTEGER PRIMARY KEY AUTOINCREMENT, alarm_id TEXT NOT NULL, type TEXT NOT NULL,
        ts INTEGER NOT NULL, severity TEXT NOT NULL, state TEXT NOT NULL, value TEXT,
        user TEXT, note TEXT, shelved INTEGER NOT NULL, incident_id TEXT
      );
      CREATE INDEX alarm_events_alarm ON alarm_events(alarm_id, seq);
      CREATE TABLE incidents (
        id TEXT PRIMARY KEY, site TEXT NOT NULL, rule TEXT NOT NULL, class TEXT NOT NULL,
        opened_at INTEGER NOT NULL, last_alarm_at INTEGER NOT NULL, alarm_count INTEGER NOT NULL,
        state TEXT NOT NULL, closed_at INTEGER
      );
      CREATE TABLE shelves (
        id TEXT PRIMARY KEY, site TEXT, device TEXT, rule TEXT, from_ms INTEGER NOT NULL,
        until_ms INTEGER NOT NULL, user TEXT NOT NULL, reason TEXT NOT NULL, created_at INTEGER NOT NULL,
        ended_at INTEGER, ended_by TEXT
      );
      CREATE TABLE rule_state (
        device_key TEXT PRIMARY KEY, state_json TEXT NOT NULL, updated_at INTEGER NOT NULL
      );
    `,
  },
  {
    // Maintenance windows (docs/maintenance-windows.md): who set and who ended each is kept on its row.
    version: 2,
    sql: `
      ALTER TABLE alarms ADD COLUMN suppressed INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE alarms ADD COLUMN window_id TEXT;
      ALTER TABLE alarm_events ADD COLUMN suppressed INTEGER NOT NULL DEFAULT 0;
      CREATE TABLE maintenance_windows (
        id TEXT PRIMARY KEY, site TEXT, device TEXT, kind TEXT, rule TEXT, schedule_json TEXT NOT NULL,
        reason TEXT NOT NULL, created_by TEXT NOT NULL, created_at INTEGER NOT NULL,
        ended_at INTEGER, ended_by TEXT
      );
    `,
  },
  {
    // Issue 19: an SSO user's identity-provider subject beside the name in every person's action.
    version: 3,
    sql: `
      ALTER TABLE alarm_events ADD COLUMN user_subject TEXT;
      ALTER TABLE shelves ADD COLUMN user_subject TEXT;
      ALTER TABLE shelves ADD COLUMN ended_by_subject TEXT;
      ALTER TABLE maintenance_windows ADD COLUMN created_by_subject TEXT;
      ALTER TABLE maintenance_windows ADD COLUMN ended_by_subject TEXT;
    `,
  },
];

interface AlarmRow {
  id: string;
  site: string;
  device: string;
  kind: string;
  rule: string;
  class: Alarm['class'];
  severity: Alarm['severity'];
  state: Alarm['state'];
  value: string | null;
  message: string;
  raised_at: number;
  cleared_at: number | null;
  acknowledged_at: number | null;
  acknowledged_by: string | null;
  ack_note: string | null;
  incident_id: string | null;
  shelved: number;
  suppressed: number;
  window_id: string | null;
  critical: number;
  updated_at: number;
}

const toAlarm = (r: AlarmRow): Alarm => ({
  id: r.id,
  site: r.site,
  device: r.device,
  kind: r.kind,
  rule: r.rule,
  class: r.class,
  severity: r.severity,
  state: r.state,
  value: r.value === null ? null : (JSON.parse(r.value) as Alarm['value']),
  message: r.message,
  raisedAt: r.raised_at,
  clearedAt: r.cleared_at,
  acknowledgedAt: r.acknowledged_at,
  acknowledgedBy: r.acknowledged_by,
  ackNote: r.ack_note,
  incidentId: r.incident_id,
  shelved: r.shelved === 1,
  suppressed: r.suppressed === 1,
  windowId: r.window_id,
  critical: r.critical === 1,
  updatedAt: r.updated_at,
});

const alarmParams = (a: Alarm) => ({
  id: a.id,
  site: a.site,
  device: a.device,
  kind: a.kind,
  rule: a.rule,
  class: a.class,
  severity: a.severity,
  state: a.state,
  value: a.value === null ? null : JSON.stringify(a.value),
  message: a.message,
  raised_at: a.raisedAt,
  cleared_at: a.clearedAt,
  acknowledged_at: a.acknowledgedAt,
  acknowledged_by: a.acknowledgedBy,
  ack_note: a.ackNote,
  incident_id: a.incidentId,
  shelved: a.shelved ? 1 : 0,
  suppressed: a.suppressed ? 1 : 0,
  window_id: a.windowId ?? null,
  critical: a.critical ? 1 : 0,
  updated_at: a.updatedAt,
});

const COLS =
  'id, site, device, kind, rule, class, severity, state, value, message, raised_at, cleared_at, acknowledged_at, acknowledged_by, ack_note, incident_id, shelved, suppressed, window_id, critical, updated_at';

/** Prepared statements over the alarm tables. Callers wrap writes in `tx`. */
export class AlarmStore {
  private readonly upsertAlarm;
  private readonly insertEvent;
  private readonly upsertIncident;
  private readonly upsertShelf;
  private readonly upsertRuleState;
  private readonly upsertWindow;

  constructor(private readonly db: Db) {
    const vals = COLS.split(', ')
      .map((c) => `@${c}`)
      .join(', ');
    const sets = COLS.split(', ')
      .filter((c) => c !== 'id')
      .map((c) => `${c} = excluded.${c}`)
      .join(', ');
    this.upsertAlarm = db.prepare(
      `INSERT INTO alarms (${COLS}) VALUES (${vals}) ON CONFLICT(id) DO UPDATE SET ${sets}`,
    );
    this.insertEvent = db.prepare(
      `INSERT INTO alarm_events (alarm_id, type, ts, severity, state, value, user, note, shelved, incident_id, suppressed,
         user_subject)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    this.upsertIncident = db.prepare(
      `INSERT INTO incidents (id, site, rule, class, opened_at, last_alarm_at, alarm_count, state, closed_at)
       VALUES (@id, @site, @rule, @class, @openedAt, @lastAlarmAt, @alarmCount, @state, @closedAt)
       ON CONFLICT(id) DO UPDATE SET last_alarm_at = excluded.last_alarm_at, alarm_count = excluded.alarm_count,
         state = excluded.state, closed_at = excluded.closed_at`,
    );
    this.upsertShelf = db.prepare(
      `INSERT INTO shelves (id, site, device, rule, from_ms, until_ms, user, reason, created_at, ended_at, ended_by,
         user_subject, ended_by_subject)
       VALUES (@id, @site, @device, @rule, @fromMs, @untilMs, @user, @reason, @createdAt, @endedAt, @endedBy,
         @userSubject, @endedBySubject)
       ON CONFLICT(id) DO UPDATE SET ended_at = excluded.ended_at, ended_by = excluded.ended_by,
         ended_by_subject = excluded.ended_by_subject`,
    );
    this.upsertWindow = db.prepare(
      `INSERT INTO maintenance_windows (id, site, device, kind, rule, schedule_json, reason, created_by, created_at,
         ended_at, ended_by, created_by_subject, ended_by_subject)
       VALUES (@id, @site, @device, @kind, @rule, @schedule, @reason, @createdBy, @createdAt, @endedAt, @endedBy,
         @createdBySubject, @endedBySubject)
       ON CONFLICT(id) DO UPDATE SET ended_at = excluded.ended_at, ended_by = excluded.ended_by,
         ended_by_subject = excluded.ended_by_subject`,
    );
    this.upsertRuleState = db.prepare(
      `INSERT INTO rule_state (device_key, state_json, updated_at) VALUES (?, ?, ?)
       ON CONFLICT(device_key) DO UPDATE SET state_json = excluded.state_json, updated_at = excluded.updated_at`,
    );
  }

  tx<T>(fn: () => T): T {
    return this.db.transaction(fn)();
  }

  /**
   * A transaction on disk when it returns, whatever the connection's `synchronous` setting: people's
   * actions (ack, shelve, unshelve), which are answered as done. Transitions from the rules commit
   * with `tx`: with alarms.db at synchronous=NORMAL they are rebuilt from the rule state after a
   * power loss (ADR 0082).
   */
  txDurable<T>(fn: () => T): T {
    if ((this.db.pragma('synchronous', { simple: true }) as number) >= 2) return this.tx(fn);
    this.db.pragma('synchronous = FULL');
    try {
      return this.tx(fn);
    } finally {
      this.db.pragma('synchronous = NORMAL');
    }
  }

  saveAlarm(a: Alarm): void {
    this.upsertAlarm.run(alarmParams(a));
  }

  saveEvent(e: AlarmEvent): void {
    const a = e.alarm;
    this.insertEvent.run(
      a.id,
      e.type,
      e.ts,
      a.severity,
      a.state,
      a.value === null ? null : JSON.stringify(a.value),
      e.user ?? null,
      e.note ?? null,
      a.shelved ? 1 : 0,
      a.incidentId,
      a.suppressed ? 1 : 0,
      e.userSubject ?? null,
    );
  }

  /**
   * An alarm's whole history as taken over from another cluster instance (ADR 0160): this file's
   * older lines of it, from an earlier time it held the alarm, are replaced.
   */
  replaceEvents(alarmId: string, events: readonly AlarmEvent[]): void {
    this.db.prepare('DELETE FROM alarm_events WHERE alarm_id = ?').run(alarmId);
    for (const e of events) this.saveEvent(e);
  }

  saveIncident(i: Incident): void {
    this.upsertIncident.run(i);
  }

  saveShelf(s: Shelf): void {
    this.upsertShelf.run({ userSubject: null, endedBySubject: null, ...s });
  }

  /** A window as set, or as ended (only its end changes once written). */
  saveWindow(w: MaintenanceWindow): void {
    this.upsertWindow.run({
      createdBySubject: null,
      endedBySubject: null,
      ...w,
      schedule: JSON.stringify(w.schedule),
    });
  }

  /** Every window ever set, oldest first. */
  windows(): MaintenanceWindow[] {
    const rows = this.db
      .prepare(
        `SELECT id, site, device, kind, rule, schedule_json, reason, created_by AS createdBy, created_at AS createdAt,
           ended_at AS endedAt, ended_by AS endedBy, created_by_subject AS createdBySubject,
           ended_by_subject AS endedBySubject FROM maintenance_windows ORDER BY created_at`,
      )
      .all() as (Omit<MaintenanceWindow, 'schedule'> & { schedule_json: string })[];
    return rows.map(({ schedule_json, ...w }) => ({
      ...w,
      schedule: JSON.parse(schedule_json) as WindowSchedule,
    }));
  }

  /** Alarms that still need attention (not in the final `cleared` state). */
  openAlarms(): Alarm[] {
    return (this.db.prepare(`SELECT ${COLS} FROM alarms WHERE state != 'cleared'`).all() as AlarmRow[]).map(
      toAlarm,
    );
  }

  alarmsSince(ts: number): Alarm[] {
    return (
      this.db
        .prepare(`SELECT ${COLS} FROM alarms WHERE raised_at >= ? ORDER BY raised_at`)
        .all(ts) as AlarmRow[]
    ).map(toAlarm);
  }

  /** Alarms raised in `[from, to)`, oldest first. */
  raisedBetween(from: number, to: number): Alarm[] {
    return (
      this.db
        .prepare(`SELECT ${COLS} FROM alarms WHERE raised_at >= ? AND raised_at < ? ORDER BY raised_at`)
        .all(from, to) as AlarmRow[]
    ).map(toAlarm);
  }

  getAlarm(id: string): Alarm | undefined {
    const row = this.db.prepare(`SELECT ${COLS} FROM alarms WHERE id = ?`).get(id) as AlarmRow | undefined;
    return row && toAlarm(row);
  }

  listAlarms(q: { site?: string; device?: string; limit: number }): Alarm[] {
    const where: string[] = [];
    const args: (string | number)[] = [];
    if (q.site !== undefined) {
      where.push('site = ?');
      args.push(q.site);
    }
    if (q.device !== undefined) {
      where.push('device = ?');
      args.push(q.device);
    }
    const sql = `SELECT ${COLS} FROM alarms ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY raised_at DESC LIMIT ?`;
    return (this.db.prepare(sql).all(...args, q.limit) as AlarmRow[]).map(toAlarm);
  }

  events(alarmId: string): {
    type: string;
    ts: number;
    severity: string;
    state: string;
    user: string | null;
    userSubject: string | null;
    note: string | null;
    shelved: number;
    suppressed: number;
  }[] {
    return this.db
      .prepare(
        `SELECT type, ts, severity, state, user, user_subject AS userSubject, note, shelved, suppressed
         FROM alarm_events WHERE alarm_id = ? ORDER BY seq`,
      )
      .all(alarmId) as ReturnType<AlarmStore['events']>;
  }

  incidents(): Incident[] {
    return (
      this.db
        .prepare(
          `SELECT id, site, rule, class, opened_at AS openedAt, last_alarm_at AS lastAlarmAt, alarm_count AS alarmCount,
             state, closed_at AS closedAt FROM incidents ORDER BY opened_at DESC`,
        )
        .all() as Incident[]
    ).map((i) => ({ ...i }));
  }

  shelves(): Shelf[] {
    return this.db
      .prepare(
        `SELECT id, site, device, rule, from_ms AS fromMs, until_ms AS untilMs, user, reason, created_at AS createdAt,
           ended_at AS endedAt, ended_by AS endedBy, user_subject AS userSubject, ended_by_subject AS endedBySubject
         FROM shelves ORDER BY created_at`,
      )
      .all() as Shelf[];
  }

  /** A whole snapshot, one row per device, all in one transaction. */
  saveRuleState(snap: EngineSnapshot, now: number): void {
    this.saveRuleStateRows(
      snap.devices.map((d) => ({ site: d.site, device: d.device, json: JSON.stringify(d) })),
      JSON.stringify(snap.readRate),
      now,
    );
  }

  /** The devices whose state changed (already serialised), in one transaction. */
  saveRuleStateRows(rows: readonly RuleStateRow[], readRate: string | undefined, now: number): void {
    this.tx(() => {
      for (const r of rows) this.upsertRuleState.run(`${r.site}/${r.device}`, r.json, now);
      if (readRate !== undefined) this.upsertRuleState.run('_read_rate', readRate, now);
    });
  }

  /** Wall time of the last rule-state save, if any. */
  ruleStateSavedAt(): number | undefined {
    const row = this.db.prepare('SELECT MAX(updated_at) AS t FROM rule_state').get() as { t: number | null };
    return row.t ?? undefined;
  }

  loadRuleState(): EngineSnapshot | undefined {
    const rows = this.db.prepare('SELECT device_key, state_json FROM rule_state').all() as {
      device_key: string;
      state_json: string;
    }[];
    if (rows.length === 0) return undefined;
    const snap: EngineSnapshot = { version: 1, devices: [], readRate: {} };
    for (const r of rows) {
      if (r.device_key === '_read_rate')
        snap.readRate = JSON.parse(r.state_json) as EngineSnapshot['readRate'];
      else snap.devices.push(JSON.parse(r.state_json) as EngineSnapshot['devices'][number]);
    }
    return snap;
  }
}
