import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, testConfig } from '../fixtures/gateway.js';
import { startMosquitto, type Mosquitto } from '../fixtures/mosquitto.js';
import { startSmtpCapture, type CapturedMail, type SmtpCapture } from '../fixtures/smtp.js';
import { freePort, waitFor } from '../fixtures/ports.js';
import { publishAll } from '../fixtures/publisher.js';
import { WebhookReceiver } from '../fixtures/webhook-receiver.js';
import { webhookSchema } from '../../gateway/src/notifications/index.js';

/**
 * Shelves and maintenance windows hold an alarm back from tickets and paging, against a real
 * Mosquitto, a real webhook receiver and a real SMTP server: nothing while held, one ticket (one
 * webhook, one mail) when released with the condition still present.
 */
const SECRET = 'quiet-test-shared-secret-0123';
const ENGINEER = 'engineer-token-quiet-0123';
/** One site per case: alarms of one rule at one site within 30 minutes are one incident, one ticket. */
const SHELF_SITE = 'plant-s';
const SITE_1 = 'plant-w1';
const SITE_2 = 'plant-w2';
const EARLY_SITE = 'plant-e';

type Gw = Awaited<ReturnType<typeof startGateway>>;
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- the test reads loose JSON
type Json = Record<string, any>;

describe('shelves and maintenance windows page nobody', () => {
  let mosq: Mosquitto;
  let gw: Gw;
  let receiver: WebhookReceiver;
  let smtp: SmtpCapture;
  let mails: CapturedMail[] = [];

  const api = async (method: string, path: string, body?: unknown) => {
    const r = await fetch(`${gw.httpUrl}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${ENGINEER}`,
        ...(body ? { 'content-type': 'application/json' } : {}),
      },
      body: body ? JSON.stringify(body) : undefined,
    });
    return { status: r.status, json: (await r.json()) as Json };
  };
  const tickets = async (device: string) =>
    (await api('GET', `/api/tickets?device=${device}`)).json.tickets as Json[];
  const alarmsOf = async (device: string) =>
    (await api('GET', `/api/alarms?state=all&device=${device}`)).json.alarms as Json[];
  const hooksFor = (device: string) =>
    receiver.received.filter((r) => (JSON.parse(r.body) as Json).ticket.device === device);
  const mailsFor = (device: string) => mails.filter((m) => m.raw.includes(`device ${device}`));
  const publish = (site: string, kind: string, device: string, values: Record<string, unknown>) =>
    publishAll(mosq.url, [
      {
        topic: `facility/${site}/${kind}/${device}/telemetry`,
        payload: JSON.stringify({ ts: Date.now(), ...values }),
      },
    ]);
  const smoke = (device: string, on: boolean) =>
    publish(SHELF_SITE, 'env-probe', device, { smoke: on, temperature_c: 22, humidity_pct: 45 });
  const chlorine = (site: string, device: string, mgl: number) =>
    publish(site, 'chlorination', device, {
      free_chlorine_mgl: mgl,
      ph: 7.2,
      turbidity_ntu: 0.2,
      level_pct: 80,
    });
  /** Long enough for a raise to pass through alarms, work orders and the notification queue. */
  const settle = () => new Promise((r) => setTimeout(r, 1500));

  beforeAll(async () => {
    mosq = await startMosquitto();
    receiver = new WebhookReceiver(SECRET, await freePort());
    await receiver.start();
    smtp = await startSmtpCapture();
    mails = smtp.mails;
    const smtpPort = smtp.port;
    gw = await startGateway(
      testConfig({
        mqtt: { url: mosq.url, clientId: `gw-quiet-${Math.random().toString(16).slice(2)}` },
        influx: { enabled: false },
        http: { tokens: [{ name: 'eve', role: 'engineer', token: ENGINEER }] },
        alarms: { tickMs: 200 },
        workorders: { maintenance: { enabled: false } },
        notifications: {
          pollMs: 100,
          webhooks: [webhookSchema.parse({ name: 'cmms', url: receiver.url, secret: SECRET })],
          email: {
            enabled: true,
            smtp: { host: '127.0.0.1', port: smtpPort, secure: false },
            to: ['desk@plant.example'],
            events: ['ticket.created'],
          },
        },
      }),
    );
  }, 60_000);

  afterAll(async () => {
    await gw?.cleanup();
    await receiver?.stop();
    await smtp?.close();
    await mosq?.stop();
  });

  it('a shelved smoke alarm: no ticket, webhook or mail while shelved; one ticket when the shelf ends with smoke present', async () => {
    const shelf = await api('POST', '/api/alarms/shelve', {
      device: 'room-1',
      untilMs: Date.now() + 4000,
      reason: 'detector under test',
    });
    expect(shelf.status).toBe(201);
    await smoke('room-1', true);
    const alarm = await waitFor(async () => (await alarmsOf('room-1'))[0], 10_000, 'the smoke alarm');
    expect(alarm).toMatchObject({ rule: 'serverroom.smoke', shelved: true, state: 'active-unacknowledged' });
    await settle();
    expect(await tickets('room-1')).toEqual([]);
    expect(hooksFor('room-1')).toEqual([]);
    expect(mailsFor('room-1')).toEqual([]);

    // The shelf runs out with smoke still present: the ticket is raised now, paged once.
    const tList = await waitFor(
      async () => {
        const list = await tickets('room-1');
        return list.length > 0 ? list : undefined;
      },
      15_000,
      'the ticket after the shelf',
    );
    const t = tList![0];
    expect(t).toMatchObject({ rule: 'serverroom.smoke', priority: 'critical', alarmId: alarm.id });
    await waitFor(() => hooksFor('room-1')[0], 10_000, 'the webhook');
    await waitFor(() => mailsFor('room-1')[0], 10_000, 'the mail');
    await settle();
    expect(await tickets('room-1')).toHaveLength(1);
    expect(hooksFor('room-1')).toHaveLength(1);
    expect(mailsFor('room-1')).toHaveLength(1);
  }, 60_000);

  it("a recurring window over a tank's cleaning: alarms inside it are suppressed; after it, one ticket", async () => {
    // Every day from now, for 5 seconds: the tank's daily cleaning, as an RRULE.
    const start = new Date(Math.floor(Date.now() / 1000) * 1000 - 1000);
    const dtstart = start.toISOString().replace(/[-:]/g, '').replace('.000', '');
    const w = await api('POST', '/api/windows', {
      kind: 'chlorination',
      rule: 'chlorine.free.low',
      schedule: { type: 'rrule', rrule: `DTSTART:${dtstart}\nRRULE:FREQ=DAILY`, durationMin: 5 / 60 },
      reason: 'tank cleaning',
    });
    expect(w.status).toBe(201);
    expect(w.json).toMatchObject({ active: true, createdBy: 'eve', reason: 'tank cleaning' });
    expect((await api('GET', '/api/windows')).json.windows.map((x: Json) => x.id)).toContain(w.json.id);

    // tank-1 stays low past the window; tank-2 is low and recovers inside it.
    await chlorine(SITE_1, 'tank-1', 0.1);
    await chlorine(SITE_2, 'tank-2', 0.1);
    const a1 = await waitFor(async () => (await alarmsOf('tank-1'))[0], 10_000, 'tank-1 alarm');
    expect(a1).toMatchObject({ rule: 'chlorine.free.low', suppressed: true, windowId: w.json.id });
    await waitFor(async () => (await alarmsOf('tank-2'))[0], 10_000, 'tank-2 alarm');
    await chlorine(SITE_2, 'tank-2', 0.5);
    await waitFor(
      async () => (await alarmsOf('tank-2'))[0]?.clearedAt ?? undefined,
      10_000,
      'tank-2 alarm cleared',
    );
    await settle();
    expect(await tickets('tank-1')).toEqual([]);
    expect(await tickets('tank-2')).toEqual([]);
    expect(hooksFor('tank-1')).toEqual([]);

    // The window ends with tank-1 still low: one ticket for it, none for tank-2.
    const t1List = await waitFor(
      async () => {
        const list = await tickets('tank-1');
        return list.length > 0 ? list : undefined;
      },
      15_000,
      'the ticket after the window',
    );
    const t1 = t1List![0];
    expect(t1).toMatchObject({ rule: 'chlorine.free.low', alarmId: a1.id });
    expect((await alarmsOf('tank-1'))[0]).toMatchObject({
      suppressed: false,
      state: 'active-unacknowledged',
    });
    expect(await tickets('tank-2')).toEqual([]);

    // The same condition after the window: raised normally, one ticket.
    await chlorine(SITE_2, 'tank-2', 0.1);
    await waitFor(async () => (await tickets('tank-2'))[0], 10_000, 'tank-2 ticket after the window');
    await settle();
    expect(await tickets('tank-1')).toHaveLength(1);
    expect(await tickets('tank-2')).toHaveLength(1);
    expect(hooksFor('tank-1')).toHaveLength(1);
  }, 60_000);

  it('a window ended early releases what it held: the ticket is raised at once', async () => {
    const w = await api('POST', '/api/windows', {
      site: EARLY_SITE,
      device: 'tank-3',
      schedule: {
        type: 'once',
        from: new Date(Date.now() - 1000).toISOString(),
        to: new Date(Date.now() + 3_600_000).toISOString(),
      },
      reason: 'meter exchange',
    });
    expect(w.status).toBe(201);
    await chlorine(EARLY_SITE, 'tank-3', 0.1);
    await waitFor(async () => (await alarmsOf('tank-3'))[0]?.suppressed, 10_000, 'suppressed alarm');
    await settle();
    expect(await tickets('tank-3')).toEqual([]);
    const ended = await api('POST', `/api/windows/${String(w.json.id)}/end`);
    expect(ended.status).toBe(200);
    expect(ended.json).toMatchObject({ endedBy: 'eve', active: false });
    expect(ended.json.released).toHaveLength(1);
    await waitFor(async () => (await tickets('tank-3'))[0], 10_000, 'tank-3 ticket');
    // Audited: who set it and who ended it stay on the record.
    const all = (await api('GET', '/api/windows?all=true')).json.windows as Json[];
    expect(all.find((x) => x.id === w.json.id)).toMatchObject({ createdBy: 'eve', endedBy: 'eve' });
    expect((await api('POST', `/api/windows/${String(w.json.id)}/end`)).status).toBe(409);
    expect((await api('POST', '/api/windows', { reason: 'x', schedule: { type: 'cron' } })).status).toBe(400);
  }, 60_000);
});
