import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import type { Gateway } from '../../gateway/src/gateway.js';
import { startGateway, testConfig } from '../fixtures/gateway.js';
import { waitFor } from '../fixtures/ports.js';

/**
 * workorders.db commits alarm-made tickets without an fsync (ADR 0091); what a power cut can take
 * of it is given back at start. The gateway in this process, on one data directory: a smoke alarm
 * makes its ticket; the ticket's commit is then taken out of workorders.db (what a power cut after the
 * alarm's commit would leave) and the next start raises it again for the same alarm, once.
 */
const TOPIC = 'facility/plant-rc/env-probe/room-9/telemetry';
type Gw = Gateway & { cleanup(): Promise<void> };

describe('a ticket lost with the last commits is raised again at start', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'fgw-ticket-reconcile-'));
  const cfg = testConfig({ dataDir, influx: { enabled: false } });
  let gw: Gw | undefined;
  afterAll(async () => {
    await gw?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });
  const roomTickets = (g: Gw) => g.workorders!.list({ device: 'room-9', limit: 10 });

  it('raises the missing ticket of an active alarm once, and leaves a listed one alone', async () => {
    gw = await startGateway(cfg);
    gw.pipeline!.handleMessage(
      TOPIC,
      Buffer.from(JSON.stringify({ smoke: true, temperature_c: 22, humidity_pct: 45 })),
      Date.now(),
    );
    await waitFor(() => roomTickets(gw!).length > 0, 15_000, 'the smoke ticket');
    const alarmId = roomTickets(gw)[0]!.alarmId;
    // The ticket lists the smoke alarm that is active now, the one the next start must find again.
    const smoke = gw
      .alarms!.activeAlarms()
      .find((a) => a.device === 'room-9' && a.rule === 'serverroom.smoke');
    expect(alarmId).toBe(smoke?.id);
    expect(typeof alarmId).toBe('string');
    await gw.stop();

    // The ticket's transaction lost: its rows and the notifications queued with it.
    const db = new Database(join(dataDir, 'workorders.db'));
    db.exec('DELETE FROM ticket_history; DELETE FROM tickets; DELETE FROM notify_queue;');
    db.close();

    gw = await startGateway(cfg);
    const again = roomTickets(gw);
    expect(again).toHaveLength(1);
    expect(again[0]).toMatchObject({
      rule: 'serverroom.smoke',
      alarmId,
      status: 'open',
      priority: 'critical',
    });
    expect(gw.workorders!.health()).toMatchObject({ reconciled: 1 });
    await gw.stop();

    // Nothing twice: the alarm is still active, its ticket lists it.
    gw = await startGateway(cfg);
    expect(roomTickets(gw)).toHaveLength(1);
    expect(gw.workorders!.health()).toMatchObject({ reconciled: 0 });
  }, 60_000);
});
