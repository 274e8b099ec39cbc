import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSimulation } from '../../simulators/index.js';
import type { Gateway } from '../../gateway/src/gateway.js';
import type { LiveEvent } from '../../gateway/src/live/hub.js';
import { startGateway, testConfig } from '../fixtures/gateway.js';
import { startMosquitto, type Mosquitto } from '../fixtures/mosquitto.js';
import { waitFor } from '../fixtures/ports.js';
import { publishAll } from '../fixtures/publisher.js';

/**
 * Work orders in the running gateway against a real Mosquitto: a reading with no chlorine
 * residual raises a safety alarm, which becomes exactly one ticket with the right priority and
 * deadlines; the alarm returning adds to it; people walk it through every action to closed, with
 * roles, and closing waits for a second person's verification.
 */

const ENGINEER = 'engineer-token-0123';
const ENGINEER2 = 'engineer2-token-0123';
const VIEWER = 'viewer-token-0123';
const MIN = 60_000;
const TOPIC = 'facility/estate-a/chlorination/tank-1/telemetry';
type Gw = Gateway & { cleanup(): Promise<void> };

let mosq: Mosquitto;
beforeAll(async () => {
  mosq = await startMosquitto();
});
afterAll(async () => {
  await mosq?.stop();
});

interface TicketJson {
  id: string;
  status: string;
  priority: string;
  site: string;
  device: string;
  rule: string;
  alarmId: string;
  alarmIds: string[];
  createdAt: string;
  responseDueAt: string;
  resolveDueAt: string;
  assignee: string | null;
  escalationLevel: number;
  repeatOf: string | null;
  standard: string | null;
  location: string | null;
  readings: { alarmValue: number; metric: string; latest: Record<string, { value: number }> };
  history: { action: string; actor: string; from: string | null; to: string; note: string | null }[];
  allowedActions: string[];
}

async function api(gw: Gateway, path: string, token: string, init: RequestInit = {}) {
  const res = await fetch(`${gw.httpUrl}${path}`, {
    ...init,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...init.headers },
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

const act = (gw: Gateway, id: string, token: string, body: Record<string, unknown>) =>
  api(gw, `/api/tickets/${id}/actions`, token, { method: 'POST', body: JSON.stringify(body) });

const reading = (ts: number, chlorine: number) => ({
  topic: TOPIC,
  payload: JSON.stringify({ ts, free_chlorine_mgl: chlorine, ph: 7.2, turbidity_ntu: 0.2, level_pct: 80 }),
});

describe('from a simulator fault to exactly one ticket', () => {
  it('the simulators publish to Mosquitto, a fault is injected through their control API, the gateway raises one critical ticket with the safety deadlines', async () => {
    const gw: Gw = await startGateway(
      testConfig({
        mqtt: { url: mosq.url, clientId: `gw-sim-${Math.random().toString(16).slice(2)}` },
        influx: { enabled: false },
        http: { tokens: [{ name: 'vic', role: 'viewer', token: VIEWER }] },
        alarms: { tickMs: 200 },
        // The simulators' site has a server room too: its maintenance schedules are not under test.
        workorders: { maintenance: { enabled: false } },
      }),
    );
    // The real simulators: engine and MQTT publisher, one tank and one server-room probe reporting every second.
    const sim = await startSimulation({
      brokerUrl: mosq.url,
      scenario: {
        name: 'e2e',
        sites: [
          {
            id: 'estate-s',
            devices: [
              { id: 'tank-9', kind: 'chlorination' },
              { id: 'room-9', kind: 'env-probe' },
            ],
          },
        ],
      },
      intervalMs: 1000,
      seed: 3,
      controlPort: 0,
      logger: pino({ level: 'warn' }),
    });
    try {
      const list = async () => (await api(gw, '/api/tickets', VIEWER)).body.tickets as TicketJson[];
      const chlorine = async () => {
        const r = await api(gw, '/api/devices/tank-9', VIEWER);
        const latest = r.body.latest as Record<string, { value: number }> | undefined;
        return r.status === 200 ? latest?.free_chlorine_mgl?.value : undefined;
      };
      await waitFor(
        async () => ((await chlorine()) ?? 0) > 0.3,
        20_000,
        'the tank reporting a normal residual',
      );
      // Normal operation: no alarm, no ticket.
      expect(await list()).toEqual([]);

      // The contamination fault, through the simulators' HTTP control (as the dashboard's demo panel does).
      const res = await fetch(`${sim.controlUrl!}/devices/tank-9/faults`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ fault: 'chlorine-loss' }),
      });
      expect(res.status, await res.text()).toBeLessThan(300);
      await waitFor(async () => (await list()).length > 0, 30_000, 'a ticket from the fault');
      const [t] = await list();
      const alarms = (await api(gw, '/api/alarms?state=all', VIEWER)).body.alarms as {
        id: string;
        rule: string;
        device: string;
      }[];
      expect(alarms.map((a) => `${a.device} ${a.rule}`)).toEqual(['tank-9 chlorine.free.low']);
      expect(t).toMatchObject({
        status: 'open',
        priority: 'critical',
        class: 'safety',
        site: 'estate-s',
        device: 'tank-9',
        rule: 'chlorine.free.low',
        alarmId: alarms[0]!.id,
      });
      const created = Date.parse(t!.createdAt);
      expect(Date.parse(t!.responseDueAt) - created).toBe(15 * MIN);
      expect(Date.parse(t!.resolveDueAt) - created).toBe(120 * MIN);
      expect(t!.readings.metric).toBe('free_chlorine_mgl');

      // The fault goes on and the residual stays gone (the alarm may worsen to critical): still one ticket.
      const seen = sim.stats().generated;
      await waitFor(() => sim.stats().generated >= seen + 6, 20_000, 'more readings from the faulty tank');
      await waitFor(async () => ((await chlorine()) ?? 1) < 0.05, 20_000, 'the residual gone');
      const after = await list();
      expect(after.map((x) => x.id)).toEqual([t!.id]);
      const full = (await api(gw, `/api/tickets/${t!.id}`, VIEWER)).body as unknown as TicketJson;
      expect(full.history.filter((h) => h.action === 'create')).toHaveLength(1);
      expect(Date.parse(full.responseDueAt) - created).toBe(15 * MIN);
    } finally {
      await sim.stop();
      await gw.cleanup();
    }
  }, 90_000);
});

describe('work orders in the running gateway', () => {
  it('a safety alarm through Mosquitto → exactly one ticket, returning alarm adds to it, walked to closed with roles', async () => {
    const gw: Gw = await startGateway(
      testConfig({
        mqtt: { url: mosq.url, clientId: `gw-wo-${Math.random().toString(16).slice(2)}` },
        influx: { enabled: false },
        http: {
          tokens: [
            { name: 'eve', role: 'engineer', token: ENGINEER },
            { name: 'bob', role: 'engineer', token: ENGINEER2 },
            { name: 'vic', role: 'viewer', token: VIEWER },
          ],
        },
        alarms: { tickMs: 200 },
        devices: [
          {
            id: 'tank-1',
            site: 'estate-a',
            kind: 'chlorination',
            location: 'block 3 roof tank',
            critical: false,
          },
        ],
      }),
    );
    const live: LiveEvent[] = [];
    const off = gw.hub.subscribe((e) => live.push(e));
    try {
      expect(gw.health().workorders?.state).toBe('ok');
      const t0 = Date.now() - 10 * MIN;
      // 0.02 mg/L: no residual left, below the 0.05 mg/L critical limit (safety class).
      await publishAll(mosq.url, [reading(t0, 0.42), reading(t0 + MIN, 0.02)], { window: 1 });
      const list = async (q = '') => (await api(gw, `/api/tickets${q}`, VIEWER)).body.tickets as TicketJson[];
      await waitFor(async () => (await list()).length > 0, 10_000, 'ticket from the alarm');
      const [brief] = await list();
      expect(await list()).toHaveLength(1);
      const alarms = (await api(gw, '/api/alarms?state=all', VIEWER)).body.alarms as {
        id: string;
        rule: string;
      }[];
      expect(alarms.map((a) => a.rule)).toEqual(['chlorine.free.low']);
      expect(brief).toMatchObject({
        status: 'open',
        priority: 'critical',
        site: 'estate-a',
        device: 'tank-1',
        rule: 'chlorine.free.low',
        alarmId: alarms[0]!.id,
        assignee: null,
        escalationLevel: 0,
        repeatOf: null,
        location: 'block 3 roof tank',
      });
      // Safety: respond within 15 minutes, escalate (resolve deadline) after 2 hours.
      const created = Date.parse(brief!.createdAt);
      expect(Date.parse(brief!.responseDueAt) - created).toBe(15 * MIN);
      expect(Date.parse(brief!.resolveDueAt) - created).toBe(120 * MIN);
      expect(brief!.standard).toContain('GB 5749-2022');
      expect(brief!.readings.alarmValue).toBe(0.02);
      expect(brief!.readings.metric).toBe('free_chlorine_mgl');
      expect(brief!.readings.latest.free_chlorine_mgl!.value).toBe(0.02);
      expect(await list('?priority=critical&site=estate-a&device=tank-1&status=open')).toHaveLength(1);
      expect(await list('?status=closed')).toHaveLength(0);
      expect((await api(gw, '/api/tickets?priority=urgent', VIEWER)).status).toBe(400);
      const id = brief!.id;

      // The condition clears (a note, never a close) and returns: the same ticket, one more alarm.
      await publishAll(mosq.url, [reading(t0 + 2 * MIN, 0.5), reading(t0 + 3 * MIN, 0.02)], { window: 1 });
      await waitFor(
        async () =>
          ((await api(gw, `/api/tickets/${id}`, VIEWER)).body as unknown as TicketJson).alarmIds.length === 2,
        10_000,
        'returning alarm on the ticket',
      );
      expect(await list()).toHaveLength(1);
      let t = (await api(gw, `/api/tickets/${id}`, VIEWER)).body as unknown as TicketJson;
      expect(t.status).toBe('open');
      expect(t.history.map((h) => h.action)).toEqual(['create', 'alarm-cleared', 'alarm-returned']);

      // Escalation through the running service, with its clock pushed past the response deadline.
      gw.workorders!.tick(Date.parse(t.responseDueAt));
      t = (await api(gw, `/api/tickets/${id}`, VIEWER)).body as unknown as TicketJson;
      expect(t.escalationLevel).toBe(1);

      // Roles: viewers read only; no token is 401.
      expect((await act(gw, id, VIEWER, { action: 'acknowledge' })).status).toBe(403);
      expect(
        (await api(gw, '/api/tickets', VIEWER, { method: 'POST', body: '{"title":"x","site":"s"}' })).status,
      ).toBe(403);
      expect((await fetch(`${gw.httpUrl}/api/tickets`)).status).toBe(401);
      // Bad bodies and transitions the state machine does not allow.
      const bad = await act(gw, id, ENGINEER, { action: 'assign' });
      expect(bad.status).toBe(400);
      expect(JSON.stringify(bad.body)).toContain('body.assignee');
      expect((await act(gw, id, ENGINEER, { action: 'explode' })).status).toBe(400);
      const early = await act(gw, id, ENGINEER, { action: 'resolve' });
      expect(early.status).toBe(409);
      expect((early.body.error as { message: string }).message).toContain(
        'cannot resolve a ticket that is open',
      );
      expect((await act(gw, 'WO-999999', ENGINEER, { action: 'comment', note: 'x' })).status).toBe(404);

      const step = async (token: string, body: Record<string, unknown>, status: string) => {
        const r = await act(gw, id, token, body);
        expect(r.status, JSON.stringify(r.body)).toBe(200);
        expect(r.body.status).toBe(status);
        return r.body as unknown as TicketJson;
      };
      await step(ENGINEER, { action: 'acknowledge', note: 'on my way' }, 'acknowledged');
      await step(ENGINEER, { action: 'assign', assignee: 'eve' }, 'assigned');
      await step(ENGINEER, { action: 'start' }, 'in_progress');
      await step(ENGINEER, { action: 'comment', note: 'dosing pump air-locked' }, 'in_progress');
      const resolved = await step(
        ENGINEER,
        { action: 'resolve', note: 'pump primed, 0.45 mg/L' },
        'resolved',
      );
      expect(resolved.allowedActions).toEqual(['verify', 'reopen', 'comment']);
      // Verification before close, and not by the resolver.
      const closeEarly = await act(gw, id, ENGINEER, { action: 'close' });
      expect(closeEarly.status).toBe(409);
      expect(JSON.stringify(closeEarly.body)).toContain('verified');
      expect((await act(gw, id, ENGINEER, { action: 'verify' })).status).toBe(409);
      await step(ENGINEER2, { action: 'verify', note: 'residual checked at the tap' }, 'resolved');
      await step(ENGINEER2, { action: 'reopen', note: 'smell of chlorine gone' }, 'reopened');
      await step(ENGINEER, { action: 'assign', assignee: 'eve' }, 'assigned');
      await step(ENGINEER, { action: 'start' }, 'in_progress');
      await step(ENGINEER, { action: 'resolve' }, 'resolved');
      await step(ENGINEER2, { action: 'verify' }, 'resolved');
      const closed = await step(ENGINEER2, { action: 'close' }, 'closed');
      expect(closed.allowedActions).toEqual(['reopen', 'comment']);
      t = (await api(gw, `/api/tickets/${id}`, VIEWER)).body as unknown as TicketJson;
      expect(
        t.history.filter((h) => h.actor !== 'system').map((h) => `${h.actor} ${h.action} ${h.to}`),
      ).toEqual([
        'eve acknowledge acknowledged',
        'eve assign assigned',
        'eve start in_progress',
        'eve comment in_progress',
        'eve resolve resolved',
        'bob verify resolved',
        'bob reopen reopened',
        'eve assign assigned',
        'eve start in_progress',
        'eve resolve resolved',
        'bob verify resolved',
        'bob close closed',
      ]);
      expect(await list('?status=closed')).toHaveLength(1);

      // A ticket raised by hand.
      const manual = await api(gw, '/api/tickets', ENGINEER, {
        method: 'POST',
        body: JSON.stringify({
          title: 'Tank lid lock broken',
          site: 'estate-a',
          device: 'tank-1',
          class: 'key',
        }),
      });
      expect(manual.status).toBe(201);
      expect(manual.body).toMatchObject({ status: 'open', priority: 'high', requester: 'eve' });
      expect((await api(gw, '/api/tickets', ENGINEER, { method: 'POST', body: '{"site":"s"}' })).status).toBe(
        400,
      );

      // Preventive maintenance in the running gateway: the tank's disinfection falls due, and its
      // ticket resolves over HTTP only with the completion form.
      const planner = gw.maintenance!;
      planner.tick(Date.now());
      expect(planner.tick(Date.now() + 11 * 24 * 60 * MIN)).toBeGreaterThanOrEqual(1);
      const pm = (await list('?device=tank-1')).find((x) => x.rule === 'pm:tank-disinfection')!;
      expect(pm).toMatchObject({ status: 'open', site: 'estate-a', location: 'block 3 roof tank' });
      for (const [action, extra] of [
        ['acknowledge', {}],
        ['assign', { assignee: 'eve' }],
        ['start', {}],
      ] as const)
        expect((await act(gw, pm.id, ENGINEER, { action, ...extra })).status).toBe(200);
      const noForm = await act(gw, pm.id, ENGINEER, { action: 'resolve' });
      expect(noForm.status).toBe(400);
      expect(JSON.stringify(noForm.body)).toContain('disinfection form');
      const withForm = await act(gw, pm.id, ENGINEER, {
        action: 'resolve',
        form: { disinfectedAt: new Date().toISOString(), amount: 2, unit: 'kg', disinfectant: 'NaClO 10%' },
      });
      expect(withForm.status, JSON.stringify(withForm.body)).toBe(200);
      expect((withForm.body.maintenance as { record: { amount: number } }).record.amount).toBe(2);

      // Every change went out on the live hub as `ticket`.
      const ticketEvents = live
        .filter((e) => e.type === 'ticket')
        .map((e) => JSON.parse(e.json) as { event: string });
      expect(ticketEvents[0]!.event).toBe('created');
      expect(ticketEvents.filter((e) => e.event === 'escalated')).toHaveLength(1);
      expect(ticketEvents.length).toBeGreaterThanOrEqual(16);
    } finally {
      off();
      await gw.cleanup();
    }
  });
});
