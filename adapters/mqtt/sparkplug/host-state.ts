import { NAMESPACE } from './tracker.js';

/** A message the MQTT connection publishes for the host application (QoS 1, retained). */
export interface HostMessage {
  topic: string;
  payload: Buffer;
}

/**
 * The Sparkplug 3.0 host application STATE of the gateway: `spBv1.0/STATE/<host id>`, retained,
 * QoS 1, JSON `{"online": bool, "timestamp": ms}`. The will registered with each MQTT CONNECT says
 * offline with the time of that CONNECT; the birth published once the subscriptions are granted
 * says online with the same timestamp; a clean stop says offline before disconnecting (a
 * DISCONNECT discards the will). Edge nodes that name the gateway as their primary host wait for
 * its birth before publishing theirs.
 */
export class HostState {
  readonly topic: string;
  private connectedAt = 0;
  private online = false;
  /** Births published again because the retained STATE said offline while connected. */
  rebirths = 0;
  /** Shared: new connections asked for because a newer member's will was published (ADR 0181). */
  reconnects = 0;
  private reconnectWanted = false;
  private newerSeen = false;

  /**
   * `shared`: several gateways (cluster members) use this host id. Edge nodes take an offline
   * STATE as the host's death only when its timestamp is not older than the last online one they
   * saw (Sparkplug 3.0), and each member's will carries the time of its CONNECT. So the member
   * that connected last re-publishes its birth over any older member's: a dying member's will is
   * then older than the birth edge nodes saw, except the newest member's (ADR 0181).
   */
  constructor(
    readonly hostId: string,
    private readonly shared = false,
  ) {
    this.topic = `${NAMESPACE}/STATE/${hostId}`;
  }

  /** The will for the CONNECT about to be sent. */
  will(now: number): HostMessage {
    this.connectedAt = now;
    this.online = false;
    this.newerSeen = false;
    return { topic: this.topic, payload: payload(false, now) };
  }

  /** After the subscriptions (the namespace and this STATE topic) were granted. */
  birth(): HostMessage {
    this.online = true;
    return { topic: this.topic, payload: payload(true, this.connectedAt) };
  }

  /** Before a clean disconnect. */
  death(now: number): HostMessage {
    this.online = false;
    return { topic: this.topic, payload: payload(false, Math.max(now, this.connectedAt)) };
  }

  /**
   * A message on our own STATE topic (we subscribe to it, as the spec asks). One that says offline
   * while we are online (the will of an earlier connection delivered late, or another client) has
   * replaced our retained birth: the birth is published again. Shared, so is an online message
   * older than our birth (another member's).
   */
  onMessage(raw: Buffer): HostMessage | undefined {
    if (!this.online) return undefined;
    let said: unknown;
    try {
      said = JSON.parse(raw.toString('utf8'));
    } catch {
      said = undefined;
    }
    const ts =
      typeof said === 'object' && said !== null ? (said as { timestamp?: unknown }).timestamp : undefined;
    if (typeof said === 'object' && said !== null && (said as { online?: unknown }).online === true) {
      // Shared: an older member's birth replaced ours; the newest birth must be the one in force.
      if (!this.shared || typeof ts !== 'number' || ts >= this.connectedAt) {
        if (this.shared && typeof ts === 'number' && ts > this.connectedAt) this.newerSeen = true;
        return undefined;
      }
    } else if (this.shared && typeof ts === 'number' && ts >= this.connectedAt) {
      // The will of a newer member: edge nodes took it as the host's death, and accept an online
      // STATE only from then on (a birth not older than it). Ours is older and must carry the time
      // of our CONNECT: only a new connection gives a birth they accept.
      this.reconnectWanted = true;
      this.reconnects++;
      return undefined;
    }
    this.rebirths++;
    return this.birth();
  }

  /** True once after a newer member's will (shared only): the connection should be made again. */
  takeReconnect(): boolean {
    const r = this.reconnectWanted;
    this.reconnectWanted = false;
    return r;
  }

  /**
   * Shared: a newer member's birth is in force (and its will has not come since). A clean stop
   * then publishes no death: edge nodes would take one, timestamped now, as the host's death
   * although the newer member is up; the DISCONNECT discards this member's will (ADR 0181).
   */
  get outranked(): boolean {
    return this.newerSeen;
  }

  get isOnline(): boolean {
    return this.online;
  }
}

function payload(online: boolean, timestamp: number): Buffer {
  return Buffer.from(JSON.stringify({ online, timestamp }));
}
