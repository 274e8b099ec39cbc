/**
 * The one contract every protocol adapter implements (MQTT JSON, Sparkplug B, OPC UA, Modbus,
 * M-Bus, the embedded broker). A source is given everything it needs in `start(ctx)`; it never
 * imports the ingest pipeline, the outbox or the metrics registry itself, so an adapter test needs
 * a fake `ctx`, not InfluxDB. Adding a protocol is a folder under `adapters/` and one line in the
 * static source registry.
 */
import type { Registry } from 'prom-client';
import type { Logger } from './log.js';
import type { ComponentHealth, Reading } from './types.js';

/** Why a reading was refused, as the ingest pipeline's reason catalogue names it. */
export interface SourceRejection {
  readonly reason: string;
  readonly detail: string;
}

/**
 * Device presence a source knows first-hand (Sparkplug B births and deaths, a field-bus device
 * that stopped answering): the device registry, as far as a source may touch it.
 */
export interface PresenceDirectory {
  /** Registers the device if it is not known yet (marked discovered). */
  ensure(site: string, kind: string, device: string): unknown;
  setPresence(site: string, device: string, online: boolean): void;
}

/**
 * What a source is handed when it starts. Its functions are bound and shared by every source: a
 * source may take them off the object once in `start()` and call them detached on its hot path.
 */
export interface SourceContext {
  /**
   * One structured reading (OPC UA, Modbus, M-Bus): validated, derived and written to the outbox
   * like an MQTT message. Returns the rejection, or null when it was accepted. Synchronous: the
   * reading's line is in the outbox's next group commit when this returns.
   */
  ingest(reading: Reading, now: number): SourceRejection | null;
  /** One raw message on the MQTT JSON convention (`facility/<site>/<kind>/<device>/telemetry`). */
  ingestMessage(topic: string, payload: Buffer, now: number): void;
  /**
   * `cb` runs once everything handed over before this call is durable (the outbox's group
   * commit): the moment to acknowledge upstream (an MQTT PUBACK, say).
   */
  afterDurable(cb: () => void): void;
  /** True while the outbox is full: a source that can wait (polling, QoS 1) should pause. */
  isFull(): boolean;
  /** `fn` runs when a full outbox has room again; returns the unsubscribe. */
  onDrain(fn: () => void): () => void;
  /**
   * Publishes a message that could not be used, with its reason, where operators look for them
   * (`facility/_rejected/<site>/<kind>/<device>`). The pipeline already counts and logs it.
   */
  publishRejected(site: string, kind: string, device: string, payload: string): void;
  /** A child logger named for this source. */
  readonly log: Logger;
  /** The gateway's Prometheus registry, for the source's own counters. */
  readonly metrics: Registry;
  /** The gateway's data directory (certificates, a source's own small state). */
  readonly dataDir: string;
  /**
   * Online/offline as the source sees its devices. The gateway always sets this and `fail`; they
   * are optional only so that contexts written by hand for tests before they existed still fit.
   */
  readonly presence?: PresenceDirectory;
  /**
   * Reports a failure after `start()` returned that the source cannot recover from itself (a
   * listener that died, a port it lost). The supervisor shows it in `/api/health`, stops the
   * source and starts it again with backoff. A device that does not answer is not such a failure:
   * the source retries it and shows it in `health()`.
   */
  fail?(err: Error): void;
  /**
   * Cluster mode only (absent on a single instance): whether this member processes the device's
   * partition now. A source that every member runs (Sparkplug B) uses it to let one member only
   * answer a device (a rebirth request); readings need no check, `ingest` goes through the gate.
   */
  readonly owns?: (site: string, device: string) => boolean;
}

/**
 * A protocol adapter. The constructor only stores its configuration; all I/O happens in
 * `start()`, which should return once the source is set up (not once a device answered: an
 * unreachable device shows in `health()` and is retried in the background). `stop()` undoes
 * everything and waits until what it handed over is durable.
 */
export interface Source {
  readonly name: string;
  start(ctx: SourceContext): Promise<void>;
  stop(): Promise<void>;
  health(): ComponentHealth;
}

/** The context as the gateway builds it: every optional part set. */
export type GatewaySourceContext = SourceContext & Required<Pick<SourceContext, 'presence' | 'fail'>>;
