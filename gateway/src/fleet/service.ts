import type { GatewayConfig } from '../config/schema.js';
import type { Logger } from '../core/log.js';
import type { Component, ComponentHealth } from '../core/types.js';
import { effectiveRules, type EffectiveRule, type Subject } from './provenance.js';
import {
  layerOverrides,
  overrideKey,
  storedOverrideSchema,
  type OverrideProblem,
  type StoredOverride,
} from './rule-overrides.js';
import type { FleetChange, FleetEntity, FleetStore } from './store.js';
import type { DeviceConfig } from '../config/schema.js';
import {
  chainSchema,
  contactProblems,
  isoWeek,
  layerContacts,
  WEEK_PATTERN,
  type Contact,
} from './contacts.js';
import { contactSchema } from '../workorders/schema.js';
import { BUILTIN_KINDS } from '../ingest/catalogue.js';
import {
  deviceKey,
  devicesFromCsv,
  layerDevices,
  storedDeviceSchema,
  type RowProblem,
  type StoredDevice,
} from './devices.js';
import {
  ScheduleSettings,
  storedScheduleSchema,
  type ScheduleView,
  type StoredSchedule,
} from './schedules.js';
import {
  occurrenceKey,
  occurrenceSchema,
  type OccurrenceException,
} from '../workorders/maintenance-schema.js';
import { contactsPin, devicePin, pinnedMessage, rulePin, schedulePin } from './pins.js';
import {
  ChannelProblem,
  ChannelSettings,
  EMAIL_KEY,
  storedChannelSchema,
  webhookKey,
  type ChannelWrite,
  type EmailInput,
  type StoredChannel,
  type WebhookInput,
} from './channels.js';
import { SecretBox } from './secret-box.js';
import type { NotificationsConfig } from '../notifications/schema.js';

/** What the fleet service needs of the gateway: the file's config, and the reload path to apply a config. */
export interface FleetHost {
  /** The config as the file (and environment) give it, before any operator's change. */
  fileConfig(): GatewayConfig;
  /** Applies a config live (Gateway.reload: rule state kept for every unchanged (device, rule)). */
  apply(next: GatewayConfig): void;
}

/** A change refused: each problem with the key path it concerns. */
export class FleetError extends Error {
  constructor(
    readonly kind: 'invalid' | 'not-found' | 'pinned' | 'in-use',
    readonly problems: OverrideProblem[],
    /** in-use: the contacts that name the channel. */
    readonly users: string[] = [],
  ) {
    super(problems.map((p) => (p.path ? `${p.path}: ${p.message}` : p.message)).join('; '));
  }
}

/**
 * Runtime configuration (ADR 0140): the config file gives the defaults, the shared store holds
 * what operators changed. Every change is validated by the config's own schemas against the
 * config in force, written with its history row, then applied through the reload path. With
 * PostgreSQL, another instance's changes are noticed by polling the newest change id.
 */
export class FleetService implements Component {
  readonly name = 'fleet';
  private overrides = new Map<string, StoredOverride>();
  private devices = new Map<string, StoredDevice>();
  private chain: Contact[] | undefined;
  private rota = new Map<string, Contact>();
  /** Notification channels (ADR 0144); their secrets sealed with GATEWAY_SECRETS_KEY when set. */
  private readonly channelSettings = new ChannelSettings(new SecretBox());
  private week = '';
  private seen = 0;
  private timer?: NodeJS.Timeout;
  private skipped = 0;
  private readonly sched = new ScheduleSettings();
  /** Operators' values left out because the file pins them (logged at each layering). */
  private pinSkipped = 0;
  /** Operators' schedules and moves or skips the file no longer allows (logged at each layering). */
  private scheduleSkipped = 0;
  // One change at a time: each is validated against the result of the previous one.
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly store: FleetStore,
    private readonly host: FleetHost,
    private readonly log: Logger,
    private readonly pollMs = 5_000,
    private readonly now: () => number = Date.now,
  ) {}

  async start(): Promise<void> {
    await this.load();
    // The week the host's config was layered for (it layers right after start).
    this.week = isoWeek(this.now());
    this.timer = setInterval(() => void this.poll(), this.pollMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.queue.catch(() => undefined);
  }

  health(): ComponentHealth {
    return {
      state: 'ok',
      overrides: this.overrides.size,
      ...(this.skipped ? { skipped: this.skipped } : {}),
      ...(this.pinSkipped ? { pinnedSkipped: this.pinSkipped } : {}),
      ...(this.scheduleSkipped ? { schedulesSkipped: this.scheduleSkipped } : {}),
    };
  }

  /** Reads every operator's setting again (at start, and when another instance changed one). */
  async load(): Promise<void> {
    this.seen = await this.store.lastChangeId();
    const next = new Map<string, StoredOverride>();
    for (const s of await this.store.list('rule-override')) {
      const r = storedOverrideSchema.safeParse(s.value);
      if (r.success) next.set(s.key, r.data);
      else this.log.error({ key: s.key, err: r.error.message }, 'a stored rule override is invalid; ignored');
    }
    this.overrides = next;
    const devices = new Map<string, StoredDevice>();
    for (const s of await this.store.list('device')) {
      const r = storedDeviceSchema.safeParse(s.value);
      if (r.success) devices.set(s.key, r.data);
      else this.log.error({ key: s.key, err: r.error.message }, 'a stored device is invalid; ignored');
    }
    this.devices = devices;
    const chain = (await this.store.list('contact')).find((s) => s.key === 'chain');
    const c = chain ? chainSchema.safeParse(chain.value) : undefined;
    this.chain = c?.success ? c.data : undefined;
    this.rota = new Map();
    for (const s of await this.store.list('on-call')) {
      const r = contactSchema.safeParse(s.value);
      if (r.success) this.rota.set(s.key, r.data);
    }
    this.sched.load(await this.store.list('schedule'), await this.store.list('pm-occurrence'), (key, err) =>
      this.log.error({ key, err }, 'a stored maintenance schedule or occurrence is invalid; ignored'),
    );
    this.channelSettings.load(
      await this.store.list('channel'),
      await this.store.secrets('channel'),
      this.log,
    );
  }

  /**
   * The file's config with the operators' changes layered on. An operator's override that the
   * file no longer allows (its rule was removed, say) is left out and logged, never fatal.
   */
  layered(file: GatewayConfig): GatewayConfig {
    this.week = isoWeek(this.now());
    const pins = file.fleet.pinned;
    // A value pinned after an operator changed it: the file's applies, the operator's is kept but
    // skipped, and one line per layering says which (a pinned site may hold hundreds of devices).
    const skipped: string[] = [];
    const cPin = contactsPin(pins);
    if (cPin && this.chain) skipped.push('contact:chain');
    if (cPin && this.rota.has(this.week)) skipped.push(`on-call:${this.week}`);
    const contacts = cPin
      ? file.workorders.contacts
      : layerContacts(file.workorders.contacts, this.chain, this.rota.get(this.week));
    let devices: ReadonlyMap<string, StoredDevice> = this.devices;
    if (pins.length) {
      const unpinned = new Map<string, StoredDevice>();
      for (const [key, d] of this.devices) {
        if (devicePin(pins, key)) skipped.push(`device:${key}`);
        else unpinned.set(key, d);
      }
      devices = unpinned;
    }
    const withDevices = {
      ...file,
      devices: layerDevices(file.devices, devices),
      workorders: { ...file.workorders, contacts, maintenance: this.maintenance(file, skipped) },
      notifications: this.channelSettings.layer(file.notifications, this.log),
    };
    const out = this.layeredRules(withDevices, skipped);
    this.pinSkipped = skipped.length;
    if (skipped.length)
      this.log.warn(
        { skipped: skipped.length, keys: skipped.slice(0, 20), pins },
        "operators' changes skipped: pinned in the config file (fleet.pinned)",
      );
    return out;
  }

  private layeredRules(file: GatewayConfig, skipped: string[]): GatewayConfig {
    const pins = file.fleet.pinned;
    const all = [...this.overrides.values()].filter((o) => {
      const pinned = rulePin(pins, o.rule) !== undefined;
      if (pinned) skipped.push(`rule-override:${overrideKey(o)}`);
      return !pinned;
    });
    const res = layerOverrides(file.rules, all);
    if (res.ok) {
      this.skipped = 0;
      return { ...file, rules: res.rules };
    }
    const kept: StoredOverride[] = [];
    for (const o of all) {
      const one = layerOverrides(file.rules, [...kept, o]);
      if (one.ok) kept.push(o);
      else
        this.log.error(
          { key: overrideKey(o), problems: one.problems },
          'rule override no longer valid; skipped',
        );
    }
    this.skipped = all.length - kept.length;
    const final = layerOverrides(file.rules, kept);
    return final.ok ? { ...file, rules: final.rules } : file;
  }

  listOverrides(): Array<StoredOverride & { key: string }> {
    return [...this.overrides].map(([key, o]) => ({ key, ...o }));
  }

  /** The rules of one device with the source of each value (default, critical, kind, site, device). */
  effective(cfg: GatewayConfig, d: Subject): Array<EffectiveRule & { pin: string | null }> {
    const pins = this.pins();
    return effectiveRules(cfg.rules, this.host.fileConfig().rules.overrides.length, d).map((r) => {
      const pin = rulePin(pins, r.rule) ?? null;
      if (!pin) return { ...r, pin };
      const sources = Object.fromEntries(
        Object.entries(r.sources).map(([k, v]) => [k, { ...v, pinned: true }]),
      );
      return { ...r, sources, pin };
    });
  }

  /** The integrator's pins (`fleet.pinned`), read from the file on every change so a reload applies them. */
  pins(): readonly string[] {
    return this.host.fileConfig().fleet.pinned;
  }

  private refusePinned(pin: string | undefined, what: string): void {
    if (pin) throw new FleetError('pinned', [{ path: pin, message: pinnedMessage(what, pin) }]);
  }

  /** Sets (replaces) the override of one (scope, target, rule); validated before anything is written. */
  setOverride(input: unknown, actor: string, note: string | null = null): Promise<FleetChange | undefined> {
    return this.serial(async () => {
      const parsed = storedOverrideSchema.safeParse(input);
      if (!parsed.success)
        throw new FleetError(
          'invalid',
          parsed.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message })),
        );
      const o = parsed.data;
      const key = overrideKey(o);
      this.refusePinned(rulePin(this.pins(), o.rule), `rule ${o.rule}`);
      const next = new Map(this.overrides).set(key, o);
      const res = layerOverrides(this.host.fileConfig().rules, [...next.values()]);
      if (!res.ok) throw new FleetError('invalid', res.problems);
      return this.write('rule-override', key, o, actor, note);
    });
  }

  removeOverride(key: string, actor: string, note: string | null = null): Promise<FleetChange | undefined> {
    return this.serial(async () => {
      const o = this.overrides.get(key);
      if (!o) throw new FleetError('not-found', [{ path: key, message: 'no such override' }]);
      // Removing is a change too: once unpinned, the layer below would apply instead of the operator's.
      this.refusePinned(rulePin(this.pins(), o.rule), `rule ${o.rule}`);
      return this.write('rule-override', key, null, actor, note);
    });
  }

  /** Every device in force, and the retired ones, with where its declaration comes from. */
  listDevices(): Array<{ device: DeviceConfig; retired: boolean; origin: 'file' | 'database' }> {
    const file = this.host.fileConfig().devices;
    const out = new Map<string, { device: DeviceConfig; retired: boolean; origin: 'file' | 'database' }>(
      file.map((d) => [deviceKey(d), { device: d, retired: false, origin: 'file' }]),
    );
    for (const [key, s] of this.devices) out.set(key, { ...s, origin: 'database' });
    return [...out.values()].sort((a, b) => deviceKey(a.device).localeCompare(deviceKey(b.device)));
  }

  /** Whether the ingest knows this kind (built in, or declared under `kinds`). */
  knownKind(kind: string): boolean {
    return kind in BUILTIN_KINDS || kind in this.host.fileConfig().kinds;
  }

  /** Creates or edits a device (a retired one comes back); validated by the config's device schema. */
  putDevice(input: unknown, actor: string, note: string | null = null): Promise<FleetChange | undefined> {
    return this.serial(async () => {
      const d = this.checkDevice(input);
      this.refusePinned(devicePin(this.pins(), deviceKey(d)), `device ${deviceKey(d)}`);
      return this.write('device', deviceKey(d), { device: d, retired: false }, actor, note);
    });
  }

  /** Retires a device: out of the registry and the rules, its row and history kept. */
  retireDevice(key: string, actor: string, note: string | null = null): Promise<FleetChange | undefined> {
    return this.serial(async () => {
      const cur = this.inForce(key);
      this.refusePinned(devicePin(this.pins(), key), `device ${key}`);
      return this.write('device', key, { device: cur, retired: true }, actor, note);
    });
  }

  /** Moves a device to another site: declared there, retired here (its history stays under the old site). */
  moveDevice(key: string, site: string, actor: string): Promise<FleetChange | undefined> {
    return this.serial(async () => {
      const cur = this.inForce(key);
      const moved = this.checkDevice({ ...cur, site });
      this.refusePinned(devicePin(this.pins(), key), `device ${key}`);
      this.refusePinned(devicePin(this.pins(), deviceKey(moved)), `device ${deviceKey(moved)}`);
      if (this.devicesInForce().has(deviceKey(moved)))
        throw new FleetError('invalid', [{ path: 'site', message: `${deviceKey(moved)} exists already` }]);
      const note = `moved from ${key} to ${deviceKey(moved)}`;
      await this.store.put('device', key, { device: cur, retired: true }, actor, note);
      this.devices.set(key, { device: cur, retired: true });
      return this.write('device', deviceKey(moved), { device: moved, retired: false }, actor, note);
    });
  }

  /**
   * Devices from CSV: every row checked first; with `dryRun` nothing is written. Otherwise the
   * good rows are written in one transaction and applied at once; bad rows are listed either way.
   */
  importDevices(
    csv: string,
    dryRun: boolean,
    actor: string,
  ): Promise<{ rows: number; valid: number; imported: number; problems: RowProblem[] }> {
    return this.serial(async () => {
      const read = devicesFromCsv(csv, (k) => this.knownKind(k));
      const pins = this.pins();
      const problems = [...read.problems];
      // A pinned device is a bad row like any other: listed with its pin, the rest imported.
      const devices = read.devices.filter(({ line, device }) => {
        const pin = devicePin(pins, deviceKey(device));
        if (pin) problems.push({ line, reason: pinnedMessage(`device ${deviceKey(device)}`, pin) });
        return !pin;
      });
      problems.sort((a, b) => a.line - b.line);
      const rows = devices.length + problems.filter((p) => p.line > 1).length;
      if (dryRun || devices.length === 0) return { rows, valid: devices.length, imported: 0, problems };
      const changes = await this.store.putMany(
        'device',
        devices.map(({ device }) => ({ key: deviceKey(device), value: { device, retired: false } })),
        actor,
        'CSV import',
      );
      for (const { device } of devices) this.devices.set(deviceKey(device), { device, retired: false });
      for (const c of changes) this.seen = Math.max(this.seen, c.id);
      this.log.info({ actor, imported: changes.length, problems: problems.length }, 'devices imported');
      this.host.apply(this.layered(this.host.fileConfig()));
      return { rows, valid: devices.length, imported: changes.length, problems };
    });
  }

  private devicesInForce(): Map<string, DeviceConfig> {
    const file = this.host.fileConfig().devices;
    return new Map(layerDevices(file, this.devices).map((d) => [deviceKey(d), d]));
  }

  private inForce(key: string): DeviceConfig {
    const cur = this.devicesInForce().get(key);
    if (!cur) throw new FleetError('not-found', [{ path: key, message: 'no such device in force' }]);
    return cur;
  }

  private checkDevice(input: unknown): DeviceConfig {
    const r = storedDeviceSchema.shape.device.safeParse(input);
    if (!r.success)
      throw new FleetError(
        'invalid',
        r.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message })),
      );
    if (!this.knownKind(r.data.kind))
      throw new FleetError('invalid', [{ path: 'kind', message: `unknown kind "${r.data.kind}"` }]);
    return r.data;
  }

  /** The escalation chain from the operators (undefined: the file's) and the on-call rota by ISO week. */
  contacts(): {
    chain: Contact[] | undefined;
    rota: Array<{ week: string; contact: Contact }>;
    week: string;
  } {
    const rota = [...this.rota]
      .map(([week, contact]) => ({ week, contact }))
      .sort((a, b) => a.week.localeCompare(b.week));
    return { chain: this.chain, rota, week: isoWeek(this.now()) };
  }

  /** The chain as set, before this week's on-call contact: the operators' (unless pinned) or the file's. */
  configuredChain(): Contact[] {
    const file = this.host.fileConfig().workorders.contacts;
    return contactsPin(this.pins()) ? file : (this.chain ?? file);
  }

  /** Replaces the escalation chain (level 1 first); checked as the config file's chain is. */
  setChain(input: unknown, actor: string, note: string | null = null): Promise<FleetChange | undefined> {
    return this.serial(async () => {
      const r = chainSchema.safeParse(input);
      if (!r.success)
        throw new FleetError(
          'invalid',
          r.error.issues.map((i) => ({ path: ['contacts', ...i.path].join('.'), message: i.message })),
        );
      this.checkContacts(r.data, 'contacts');
      this.refusePinned(contactsPin(this.pins()), 'the escalation chain');
      return this.write('contact', 'chain', r.data, actor, note);
    });
  }

  /** Who is on call in an ISO week (`2026-W49`): level 1 of the chain that week; null removes the entry. */
  setOnCall(
    week: string,
    input: unknown,
    actor: string,
    note: string | null = null,
  ): Promise<FleetChange | undefined> {
    return this.serial(async () => {
      if (!WEEK_PATTERN.test(week))
        throw new FleetError('invalid', [{ path: 'week', message: 'must be an ISO week, 2026-W49' }]);
      this.refusePinned(contactsPin(this.pins()), 'the on-call rota');
      if (input === null) {
        if (!this.rota.has(week))
          throw new FleetError('not-found', [{ path: week, message: 'nobody is on call that week' }]);
        return this.write('on-call', week, null, actor, note);
      }
      const r = contactSchema.safeParse(input);
      if (!r.success)
        throw new FleetError(
          'invalid',
          r.error.issues.map((i) => ({ path: ['contact', ...i.path].join('.'), message: i.message })),
        );
      this.checkContacts([r.data], 'contact');
      return this.write('on-call', week, r.data, actor, note);
    });
  }

  private checkContacts(contacts: Contact[], at: string): void {
    // Against the channels in force: the file's and the operators'.
    const problems = contactProblems(this.layered(this.host.fileConfig()), contacts, at);
    if (problems.length)
      throw new FleetError(
        'invalid',
        problems.map((p) => ({ path: '', message: p })),
      );
  }

  /**
   * The file's maintenance with the operators' schedules and occurrences layered on, those of a
   * pinned schedule left out. Only a layering (`pinSkipped` given) counts and logs what is left out,
   * in one line: the viewers' reads and the checks of a change would repeat it on every request.
   */
  private maintenance(
    file: GatewayConfig,
    pinSkipped?: string[],
  ): GatewayConfig['workorders']['maintenance'] {
    const pins = file.fleet.pinned;
    const invalid: Array<{ key: string; problems: unknown }> = [];
    const out = this.sched.layer(
      file.workorders.maintenance,
      (key, problems) => invalid.push({ key, problems }),
      (entity, key, schedule) => {
        const pinned = schedulePin(pins, schedule) !== undefined;
        if (pinned) pinSkipped?.push(`${entity}:${key}`);
        return pinned;
      },
    );
    if (pinSkipped) {
      this.scheduleSkipped = invalid.length;
      if (invalid.length)
        this.log.error(
          { skipped: invalid.length, entries: invalid.slice(0, 20) },
          'maintenance schedules or occurrences no longer valid; skipped',
        );
    }
    return out;
  }

  /** Every schedule (file, operators', retired) with its next `count` occurrences and its moves and skips. */
  listSchedules(count: number): {
    timeZone: string;
    schedules: Array<ScheduleView & { pin: string | null }>;
  } {
    const file = this.host.fileConfig();
    const pins = file.fleet.pinned;
    return {
      timeZone: file.workorders.maintenance.timeZone,
      schedules: this.sched
        .list(file.workorders.maintenance, this.maintenance(file), count, this.now())
        .map((v) => ({ ...v, pin: schedulePin(pins, v.schedule.id) ?? null })),
    };
  }

  private refuseScheduleChange(id: string): void {
    this.refusePinned(schedulePin(this.pins(), id), `maintenance schedule ${id}`);
  }

  /** Creates or edits a maintenance schedule (a retired one comes back), checked by the file's schema. */
  putSchedule(input: unknown, actor: string, note: string | null = null): Promise<FleetChange | undefined> {
    return this.serial(async () => {
      const id = (input as { id?: unknown } | null)?.id;
      if (typeof id === 'string') this.refuseScheduleChange(id);
      const r = this.sched.checkSchedule(this.maintenance(this.host.fileConfig()), input);
      if (!r.ok) throw new FleetError('invalid', r.problems);
      this.refuseScheduleChange(r.value.id);
      return this.write('schedule', r.value.id, { schedule: r.value, retired: false }, actor, note);
    });
  }

  /** Retires a schedule: no more work orders from it; its settings and history are kept. */
  retireSchedule(id: string, actor: string, note: string | null = null): Promise<FleetChange | undefined> {
    return this.serial(async () => {
      this.refuseScheduleChange(id);
      const cur = this.maintenance(this.host.fileConfig()).schedules.find((s) => s.id === id);
      if (!cur) throw new FleetError('not-found', [{ path: id, message: 'no such schedule in force' }]);
      const stored = this.sched.schedules.get(id)?.schedule ?? cur;
      return this.write('schedule', id, { schedule: stored, retired: true }, actor, note);
    });
  }

  /** Moves (`moveTo`) or skips (`skip`: the reason) one occurrence; the series stays as it is. */
  setOccurrence(input: unknown, actor: string, note: string | null = null): Promise<FleetChange | undefined> {
    return this.serial(async () => {
      const schedule = (input as { schedule?: unknown } | null)?.schedule;
      if (typeof schedule === 'string') this.refuseScheduleChange(schedule);
      const r = this.sched.checkOccurrence(this.maintenance(this.host.fileConfig()), input, this.now());
      if (!r.ok) throw new FleetError('invalid', r.problems);
      this.refuseScheduleChange(r.value.schedule);
      return this.write('pm-occurrence', occurrenceKey(r.value), r.value, actor, note);
    });
  }

  /** Takes back a move or skip not passed yet: the occurrence falls due as its series has it. */
  removeOccurrence(key: string, actor: string, note: string | null = null): Promise<FleetChange | undefined> {
    return this.serial(async () => {
      // The key starts with the schedule's id (`<id>@<dueAt>…`; an id has no `@`).
      this.refuseScheduleChange(key.slice(0, key.indexOf('@')));
      const cur = this.sched.occurrences.get(key)?.value;
      if (!cur)
        throw new FleetError('not-found', [{ path: key, message: 'no such moved or skipped occurrence' }]);
      const now = this.now();
      if (Date.parse(cur.dueAt) <= now || (cur.moveTo !== undefined && Date.parse(cur.moveTo) <= now))
        throw new FleetError('invalid', [{ path: key, message: 'has passed already: kept as it was' }]);
      return this.write('pm-occurrence', key, null, actor, note);
    });
  }

  history(f: { entity?: FleetEntity; key?: string; limit?: number }): Promise<FleetChange[]> {
    return this.store.history(f);
  }

  change(id: number): Promise<FleetChange | undefined> {
    return this.store.change(id);
  }

  /** Puts back the value a change replaced (its `before`), as a new change of its own. */
  async restore(id: number, actor: string): Promise<FleetChange | undefined> {
    const c = await this.store.change(id);
    if (!c) throw new FleetError('not-found', [{ path: String(id), message: 'no such change' }]);
    const note = `restore of change ${id}`;
    if (c.entity === 'device')
      return this.serial(async () => {
        this.refusePinned(devicePin(this.pins(), c.key), `device ${c.key}`);
        if (c.before === null) return this.write('device', c.key, null, actor, note);
        const r = storedDeviceSchema.safeParse(c.before);
        if (!r.success) throw new FleetError('invalid', [{ path: c.key, message: r.error.message }]);
        return this.write('device', c.key, r.data, actor, note);
      });
    if (c.entity === 'contact' || c.entity === 'on-call')
      return this.serial(async () => {
        this.refusePinned(contactsPin(this.pins()), 'the escalation chain');
        const r = (c.entity === 'contact' ? chainSchema : contactSchema).safeParse(c.before);
        if (c.before !== null && !r.success)
          throw new FleetError('invalid', [{ path: c.key, message: r.error!.message }]);
        return this.write(
          c.entity,
          c.key,
          c.before === null ? null : (r.data as Contact | Contact[]),
          actor,
          note,
        );
      });
    if (c.entity === 'schedule')
      return this.serial(async () => {
        this.refuseScheduleChange(c.key);
        if (c.before === null) return this.write('schedule', c.key, null, actor, note);
        const r = storedScheduleSchema.safeParse(c.before);
        if (!r.success) throw new FleetError('invalid', [{ path: c.key, message: r.error.message }]);
        // The same check as a PUT: the file may have changed since (a kind or zone gone, say).
        if (!r.data.retired) {
          const ok = this.sched.checkSchedule(this.maintenance(this.host.fileConfig()), r.data.schedule);
          if (!ok.ok) throw new FleetError('invalid', ok.problems);
        }
        return this.write('schedule', c.key, r.data, actor, note);
      });
    if (c.entity === 'pm-occurrence') {
      if (c.before === null) return this.removeOccurrence(c.key, actor, note);
      const r = occurrenceSchema.safeParse(c.before);
      if (!r.success) throw new FleetError('invalid', [{ path: c.key, message: r.error.message }]);
      return this.setOccurrence(r.data, actor, note);
    }
    if (c.entity === 'channel')
      return this.serial(async () => {
        if (c.before === null) return this.writeChannel(c.key, null, actor, note);
        const r = storedChannelSchema.safeParse(c.before);
        if (!r.success) throw new FleetError('invalid', [{ path: c.key, message: r.error.message }]);
        // The secrets in force stay: the history never held them.
        return this.writeChannel(c.key, { key: c.key, value: r.data, sealed: undefined }, actor, note);
      });
    if (c.entity !== 'rule-override')
      throw new FleetError('invalid', [
        { path: c.entity, message: 'this kind of change cannot be restored yet' },
      ]);
    return c.before === null
      ? this.removeOverride(c.key, actor, note)
      : this.setOverride(c.before, actor, note);
  }

  private async write(
    entity: FleetEntity,
    key: string,
    value: StoredOverride | StoredDevice | Contact | Contact[] | StoredSchedule | OccurrenceException | null,
    actor: string,
    note: string | null,
  ): Promise<FleetChange | undefined> {
    const change = await this.store.put(entity, key, value, actor, note);
    if (!change) return undefined;
    if (entity === 'contact') this.chain = (value ?? undefined) as Contact[] | undefined;
    else if (entity === 'schedule' || entity === 'pm-occurrence')
      this.sched.set(entity, key, value, actor, change.at);
    else {
      const map = (
        entity === 'device' ? this.devices : entity === 'on-call' ? this.rota : this.overrides
      ) as Map<string, typeof value>;
      if (value === null) map.delete(key);
      else map.set(key, value);
    }
    this.seen = Math.max(this.seen, change.id);
    this.log.info({ entity, key, actor, change: change.id }, 'runtime configuration changed');
    this.host.apply(this.layered(this.host.fileConfig()));
    return change;
  }

  /** The notification channels: the file's and the operators', each with where it comes from. */
  listChannels(): {
    file: NotificationsConfig;
    effective: NotificationsConfig;
    stored: Map<string, StoredChannel>;
    usedBy: (webhook: string) => string[];
  } {
    const file = this.host.fileConfig().notifications;
    const stored = new Map(this.channelSettings.keys().map((k) => [k, this.channelSettings.get(k)!]));
    const webhooks = new Map<string, string[]>();
    return {
      file,
      effective: this.layered(this.host.fileConfig()).notifications,
      stored,
      usedBy: (name) => {
        if (!webhooks.has(name)) webhooks.set(name, this.contactsUsing(name));
        return webhooks.get(name)!;
      },
    };
  }

  /** A webhook as it stands, enabled or not (to show an operator's disabled one). */
  webhookNow(name: string) {
    return this.channelSettings.webhookNow(name, this.host.fileConfig().notifications);
  }

  /** The names of the contacts (chain in force, the file's, the rota) reached through a webhook. */
  private contactsUsing(name: string): string[] {
    const all = [...this.host.fileConfig().workorders.contacts, ...(this.chain ?? []), ...this.rota.values()];
    return [...new Set(all.filter((k) => k.webhook === name).map((k) => k.name))];
  }

  /** Creates, edits or disables a webhook; secrets not sent are kept. Refused while in use to disable. */
  putWebhook(
    input: WebhookInput,
    actor: string,
    note: string | null = null,
  ): Promise<FleetChange | undefined> {
    return this.serial(async () => {
      const w = this.prepareChannel(() =>
        this.channelSettings.prepareWebhook(input, this.host.fileConfig().notifications),
      );
      if (w.value.kind === 'webhook' && w.value.disabled) this.refuseInUse(input.name);
      return this.writeChannel(w.key, w, actor, note);
    });
  }

  /** Removes the operator's webhook (the file's of that name, if any, applies again). */
  removeWebhook(name: string, actor: string, note: string | null = null): Promise<FleetChange | undefined> {
    return this.serial(async () => {
      const key = webhookKey(name);
      if (!this.channelSettings.get(key))
        throw new FleetError('not-found', [
          { path: name, message: 'no webhook of that name set here (one from the file can be disabled)' },
        ]);
      if (!this.host.fileConfig().notifications.webhooks.some((w) => w.name === name)) this.refuseInUse(name);
      return this.writeChannel(key, null, actor, note);
    });
  }

  /** Sets the email channel (SMTP, sender, recipients); the password not sent is kept. */
  putEmail(input: EmailInput, actor: string, note: string | null = null): Promise<FleetChange | undefined> {
    return this.serial(async () => {
      const w = this.prepareChannel(() =>
        this.channelSettings.prepareEmail(input, this.host.fileConfig().notifications),
      );
      this.checkEmail(w.value.kind === 'email' && w.value.email.enabled === true, w.value);
      return this.writeChannel(w.key, w, actor, note);
    });
  }

  /**
   * What the config file's own check says of the email channel: on, it needs somebody to write to;
   * off, no contact may be reached by email.
   */
  private checkEmail(enabled: boolean, value: StoredChannel | undefined): void {
    const all = [...this.host.fileConfig().workorders.contacts, ...(this.chain ?? []), ...this.rota.values()];
    const mailed = [...new Set(all.filter((k) => k.email !== undefined).map((k) => k.name))];
    if (!enabled && mailed.length)
      throw new FleetError(
        'in-use',
        [{ path: 'enabled', message: `the contacts ${mailed.join(', ')} are reached by email` }],
        mailed,
      );
    const e = value?.kind === 'email' ? value.email : undefined;
    const count = (x: unknown) => (Array.isArray(x) ? x.length : 0);
    const byPriority = Object.values((e?.byPriority ?? {}) as Record<string, unknown>).some(
      (x) => count(x) > 0,
    );
    if (enabled && e && count(e.to) + count(e.safety) === 0 && !byPriority && mailed.length === 0)
      throw new FleetError('invalid', [
        {
          path: 'to',
          message: 'email is enabled but has no recipients (to, byPriority, safety or a contact email)',
        },
      ]);
  }

  /** The file's email channel applies again. */
  removeEmail(actor: string, note: string | null = null): Promise<FleetChange | undefined> {
    return this.serial(async () => {
      if (!this.channelSettings.get(EMAIL_KEY))
        throw new FleetError('not-found', [{ path: 'email', message: 'the email channel is the file’s' }]);
      this.checkEmail(this.host.fileConfig().notifications.email.enabled, undefined);
      return this.writeChannel(EMAIL_KEY, null, actor, note);
    });
  }

  private prepareChannel(fn: () => ChannelWrite): ChannelWrite {
    try {
      return fn();
    } catch (err) {
      if (err instanceof ChannelProblem) throw new FleetError('invalid', err.problems);
      throw err;
    }
  }

  private refuseInUse(name: string): void {
    const users = this.contactsUsing(name);
    if (users.length)
      throw new FleetError(
        'in-use',
        [{ path: name, message: `webhook ${name} is used by the contacts ${users.join(', ')}` }],
        users,
      );
  }

  /**
   * A channel written with its secrets in one transaction (`sealed` undefined: kept as stored);
   * secrets never reach the history or the log.
   */
  private async writeChannel(
    key: string,
    w: (Omit<ChannelWrite, 'sealed'> & { sealed: string | undefined }) | null,
    actor: string,
    note: string | null,
  ): Promise<FleetChange | undefined> {
    if (w?.value.kind === 'webhook' && w.value.disabled) this.refuseInUse(key.slice('webhook:'.length));
    if (w === null && key.startsWith('webhook:')) {
      const name = key.slice('webhook:'.length);
      if (!this.host.fileConfig().notifications.webhooks.some((x) => x.name === name)) this.refuseInUse(name);
    }
    const change = await this.store.putWithSecrets(
      'channel',
      key,
      w?.value ?? null,
      w ? w.sealed : null,
      actor,
      note,
    );
    const secrets = w?.sealed !== undefined ? this.channelSettings.opened(w as ChannelWrite) : undefined;
    if (secrets && !this.channelSettings.box.encrypting)
      this.log.warn(
        { key },
        'channel secrets stored unencrypted: set GATEWAY_SECRETS_KEY to seal them (docs/security.md)',
      );
    this.channelSettings.set(key, w?.value ?? null, secrets);
    if (!change) return undefined;
    this.seen = Math.max(this.seen, change.id);
    this.log.info({ entity: 'channel', key, actor, change: change.id }, 'runtime configuration changed');
    this.host.apply(this.layered(this.host.fileConfig()));
    return change;
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** Another instance sharing the database changed something: read and apply it. */
  private async poll(): Promise<void> {
    try {
      await this.serial(async () => {
        const last = await this.store.lastChangeId();
        // A new week may bring another on-call contact even when nothing was written.
        if (last <= this.seen && isoWeek(this.now()) === this.week) return;
        if (last > this.seen) await this.load();
        this.host.apply(this.layered(this.host.fileConfig()));
      });
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'runtime configuration could not be checked');
    }
  }
}
