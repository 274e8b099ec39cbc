import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Gateway } from '../../gateway/src/gateway.js';
import { openSql } from '../../gateway/src/storage/sql/dialect.js';
import { ViewWriter } from '../../gateway/src/view/writer.js';
import type { Ticket } from '../../gateway/src/workorders/types.js';
import { testAlarm } from '../fixtures/alarm.js';
import { ADMIN_TOKEN, startGateway, testConfig } from '../fixtures/gateway.js';
import { startMosquitto, type Mosquitto } from '../fixtures/mosquitto.js';
import { startPostgres, type Postgres } from '../fixtures/postgres.js';

const log = pino({ level: 'silent' });

/**
 * The monthly report route of a cluster member (issue 15), wired as the gateway wires it: it counts
 * the alarms and tickets another member holds (written to the shared view), which this member's
 * own files never see.
 */
describe('GET /api/reports/monthly in cluster mode', () => {
  let db: Postgres;
  let mosq: Mosquitto;
  let gw: Gateway & { cleanup(): Promise<void> };

  beforeAll(async () => {
    [db, mosq] = await Promise.all([startPostgres(), startMosquitto()]);
    gw = await startGateway(
      testConfig({
        storage: { postgres: db.url },
        cluster: { instanceId: 'gw-report', partitions: 4, failoverMs: 5_000 },
        mqtt: { url: mosq.url, clientId: 'facility-gateway-gw-report' },
        influx: { enabled: false },
        logLevel: 'silent',
      }),
    );
  }, 120_000);
  afterAll(async () => {
    await gw?.cleanup();
    await Promise.all([db?.close(), mosq?.stop()]);
  });

  it("counts another member's alarm and ticket", async () => {
    const now = Date.now();
    // Another member's writer on the same database (the gateway created the view's tables).
    const other = openSql({ postgresUrl: db.url, sqliteFile: '/nonexistent' });
    const writer = new ViewWriter({
      instanceId: 'gw-other',
      db: () => other.db,
      dialect: () => 'postgres',
      log,
    });
    await writer.start();
    try {
      const alarm = testAlarm({ site: 'far-site', raisedAt: now, updatedAt: now });
      writer.onAlarm({ type: 'raise', ts: now, alarm });
      const ticket = {
        id: 'WO-900001',
        title: 'far work',
        site: 'far-site',
        device: null,
        status: 'open',
        priority: 'high',
        assignee: null,
        createdAt: now,
        updatedAt: now,
        respondedAt: null,
        resolvedAt: null,
        repeatOf: null,
        responseDueAt: now + 3_600_000,
        resolveDueAt: now + 86_400_000,
        history: [],
      } as unknown as Ticket;
      writer.onTicket({ type: 'created', ticket, entries: [], firstEntry: 0 });
      await writer.drained();
    } finally {
      await writer.stop();
      await other.db.destroy();
    }

    const month = new Date(now).toISOString().slice(0, 7);
    const res = await fetch(`${gw.httpUrl}/api/reports/monthly?month=${month}`, {
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    });
    expect(res.status).toBe(200);
    const r = (await res.json()) as {
      alarms: { bySite: Record<string, number> };
      tickets: { opened: { bySite: Record<string, number> } };
    };
    expect(r.alarms.bySite['far-site']).toBe(1);
    expect(r.tickets.opened.bySite['far-site']).toBe(1);
  }, 60_000);
});
