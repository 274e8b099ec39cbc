import {
  AttributeIds,
  MessageSecurityMode,
  OPCUAClient,
  SecurityPolicy,
  type ClientSession,
  type ClientSessionRawSubscriptionService,
  type ClientSubscription,
  type DataValue,
  type DeleteSubscriptionsRequestLike,
  type DeleteSubscriptionsResponse,
  type OPCUACertificateManager,
  type TransferSubscriptionsRequestLike,
  type TransferSubscriptionsResponse,
} from 'node-opcua';
import { pino } from 'pino';
import type { Logger } from '../../gateway/src/core/log.js';
import type { Source, SourceContext } from '../../gateway/src/core/source.js';
import type { ComponentHealth, Reading } from '../../gateway/src/core/types.js';
import { identityOf, signInError } from './identity.js';
import { createCertificateManager } from './pki.js';
import { isUnreadable, liveItemCount, monitorAll, type MonitoredGroup } from './monitor.js';
import { ReadingBatcher, type OpcuaSample } from './readings.js';
import { nodeLabel, resolveNodes, type Monitored, type NodeFailure } from './resolve.js';
import type { OpcuaEndpointConfig, OpcuaNodeConfig } from './schema.js';

type ConnectionState = 'stopped' | 'connecting' | 'connected' | 'reconnecting';

/**
 * node-opcua calls this on the client, when a session could not be reactivated, with the
 * replacement session it opened, before it transfers or re-creates the old session's
 * subscriptions; an error ends that repair. Not in node-opcua's public typings (IPrivateClient).
 */
interface SubscriptionRecreateHook {
  beforeSubscriptionRecreate?: (session: ClientSession) => Promise<Error | undefined>;
}

/**
 * The promise forms of node-opcua's raw subscription calls (it answers with a promise when given no
 * callback). Its typings list the form with an optional callback, returning void, first, and a
 * call without a callback would resolve to that.
 */
interface RawSubscriptionCalls {
  transferSubscriptions(options: TransferSubscriptionsRequestLike): Promise<TransferSubscriptionsResponse>;
  deleteSubscriptions(options: DeleteSubscriptionsRequestLike): Promise<DeleteSubscriptionsResponse>;
}

const SILENT: Logger = pino({ level: 'silent' });

/** Session pings when nothing else was heard for half of this: finds a session the server dropped. */
const KEEPALIVE_MS = 5000;
/** The longest any clean-up request may hold up a rebuild (a half-dead server may never answer). */
const CLEANUP_MS = 5000;
/** Failures listed in health; the count covers them all. */
const MAX_LISTED_FAILURES = 20;

/**
 * One OPC UA endpoint: one client, one session, one subscription holding the configured nodes.
 *
 * After a broken connection node-opcua re-opens the channel and reactivates the same session:
 * the server kept that session's subscription and monitored items, so nothing is re-created.
 * When the session cannot be reactivated (a server restart, a session the server closed or
 * timed out) node-opcua would re-create the subscription itself, from the NodeIds resolved at
 * first connect and in one request; this class takes over instead (see onSessionLost): it drops
 * the client and builds everything again on a new session, resolving `nsu=` ids and browse paths
 * against the server as it is now and creating the monitored items in batches. A subscription the
 * lost session may have left on the server is transferred to the new session and deleted, so the
 * server ends with exactly one subscription for this endpoint (node-opcua#1059, telegraf#19186).
 */
export class OpcuaSource implements Source {
  readonly name: string;
  private client?: OPCUAClient;
  private session?: ClientSession;
  private subscription?: ClientSubscription;
  private groups: MonitoredGroup[] = [];
  private polled: Monitored[] = [];
  private failed: NodeFailure[] = [];
  private pollTimer?: NodeJS.Timeout;
  private retryTimer?: NodeJS.Timeout;
  private watchdog?: NodeJS.Timeout;
  /** Ends the wait between two connect attempts early (stop). */
  private wake?: () => void;
  private certs?: OPCUACertificateManager;
  private state: ConnectionState = 'stopped';
  private stopping = false;
  private rebuilding = false;
  private running?: Promise<void>;
  private lastError?: string;
  /** When the subscription last sent anything (data or keep-alive). */
  private lastActivity = 0;
  /** Subscriptions of lost sessions the server may still hold; removed on the next session. */
  private orphans: number[] = [];
  private readonly batcher: ReadingBatcher;
  private readonly stats = {
    valuesReceived: 0,
    readings: 0,
    rejected: 0,
    badValues: 0,
    uncertainValues: 0,
    sessions: 0,
    reconnections: 0,
    rebuilds: 0,
  };

  /** Set by start(): where readings go, the log, the data directory. */
  private ctx?: SourceContext;
  /** Until start() hands over the source's own logger, nothing is logged. */
  private log: Logger = SILENT;

  constructor(private readonly cfg: OpcuaEndpointConfig) {
    this.name = `opcua:${cfg.name}`;
    this.batcher = new ReadingBatcher((rs) => this.deliver(rs));
  }

  /** Never throws for an unreachable server: the connection is retried in the background. */
  async start(ctx: SourceContext): Promise<void> {
    this.ctx = ctx;
    this.log = ctx.log;
    this.stopping = false;
    this.certs = createCertificateManager(ctx.dataDir);
    await this.certs.initialize();
    this.running = this.connectLoop();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.retryTimer);
    this.wake?.();
    await this.teardown();
    // A connect in flight fails on the closed client or, if it got further, left a session
    // behind after the teardown above: wait for it, then close whatever it opened.
    await this.running?.catch(() => undefined);
    await this.teardown();
    this.running = undefined;
    this.batcher.flush();
    await this.certs?.dispose();
    this.certs = undefined;
    this.state = 'stopped';
  }

  health(): ComponentHealth {
    const monitoredItems = this.monitoredItemCount();
    const configuredNodes = this.cfg.nodes.length;
    const complete = monitoredItems === configuredNodes && this.failed.length === 0;
    const state =
      this.state === 'connected'
        ? complete
          ? 'ok'
          : 'degraded'
        : this.state === 'stopped'
          ? 'stopped'
          : this.state === 'connecting' && this.stats.sessions === 0 && !this.lastError
            ? 'starting'
            : 'down';
    const first = this.failed[0];
    return {
      state,
      connection: this.state,
      endpoint: this.cfg.endpointUrl,
      detail:
        this.lastError ??
        (this.state === 'connected' && !complete
          ? `${monitoredItems} of ${configuredNodes} nodes monitored, ${this.polled.length} polled, ` +
            `${this.failed.length} failed${first ? ` (${first.node}: ${first.reason})` : ''}`
          : undefined),
      subscriptions: this.subscription ? 1 : 0,
      configuredNodes,
      monitoredItems,
      polledNodes: this.polled.length,
      failedNodes: this.failed.length,
      failures: this.failed.slice(0, MAX_LISTED_FAILURES),
      ...this.stats,
    };
  }

  /** Monitored items the server accepted in our subscription (tests check there are no duplicates). */
  monitoredItemCount(): number {
    return liveItemCount(this.groups);
  }

  private async connectLoop(): Promise<void> {
    let delay = this.cfg.reconnect.initialDelayMs;
    while (!this.stopping) {
      try {
        await this.connect();
        return;
      } catch (err) {
        const message = (err as Error).message;
        // The same failure every few seconds for hours (a PLC switched off) is logged once;
        // health carries the current error all along.
        const level = message === this.lastError ? 'debug' : 'warn';
        this.lastError = message;
        this.log[level](
          { error: message, endpoint: this.cfg.endpointUrl, retryInMs: delay },
          'OPC UA connect failed',
        );
        await this.teardown();
        if (this.stopping) return;
        await new Promise<void>((r) => {
          this.wake = r;
          this.retryTimer = setTimeout(r, delay);
        });
        this.wake = undefined;
        // An operator trusts a server by moving its certificate from rejected/ to trusted/ (docs/opcua.md).
        // The manager learns of such moves from file-system events, which can arrive late or out of
        // order with its own write of the next refusal: read the folders again before retrying.
        if (/certificate/i.test(message)) await this.certs?.reloadCertificates().catch(() => undefined);
        delay = Math.min(delay * 2, this.cfg.reconnect.maxDelayMs);
      }
    }
  }

  private async connect(): Promise<void> {
    const cfg = this.cfg;
    this.state = 'connecting';
    const client = OPCUAClient.create({
      applicationName: 'facility-gateway',
      applicationUri: 'urn:facility-gateway:opcua-client',
      clientName: `facility-gateway-${cfg.name}`,
      endpointMustExist: false,
      securityMode: MessageSecurityMode[cfg.securityMode],
      securityPolicy: SecurityPolicy[cfg.securityPolicy],
      clientCertificateManager: this.certs,
      keepSessionAlive: true,
      keepAliveInterval: KEEPALIVE_MS,
      requestedSessionTimeout: 60_000,
      connectionStrategy: {
        // The first connection is retried by connectLoop, so each failure shows in health and
        // stop() never waits on a connect that retries forever inside node-opcua.
        maxRetry: 0,
        initialDelay: cfg.reconnect.initialDelayMs,
        maxDelay: cfg.reconnect.maxDelayMs,
      },
    });
    this.client = client;
    // Events of a client this source has already let go of must not touch the current state.
    const current = (): boolean => this.client === client && !this.stopping;
    client.on('connection_lost', () => {
      if (!current()) return;
      this.state = 'reconnecting';
      this.log.warn({ endpoint: cfg.endpointUrl }, 'OPC UA connection lost, reconnecting');
    });
    client.on('connection_reestablished', () => {
      if (!current()) return;
      this.state = 'connected';
      this.stats.reconnections++;
      this.lastError = undefined;
      this.lastActivity = Date.now();
      this.log.info(
        { endpoint: cfg.endpointUrl, monitoredItems: this.monitoredItemCount() },
        'OPC UA connection re-established, session and subscription kept',
      );
    });
    client.on('backoff', (retry: number, delayMs: number) => {
      if (current()) this.lastError = `reconnect attempt ${retry} failed, next in ${delayMs} ms`;
    });
    (client as unknown as SubscriptionRecreateHook).beforeSubscriptionRecreate = (replacement) =>
      this.onSessionLost(client, replacement);

    await client.connect(cfg.endpointUrl);
    // From here on node-opcua re-opens a broken channel and reactivates the session; it only
    // does so when its strategy allows retries (-1: without end).
    client.connectionStrategy.maxRetry = -1;
    const session = await client.createSession(identityOf(cfg.auth)).catch((err: Error) => {
      throw signInError(err, cfg.auth);
    });
    this.session = session;
    this.stats.sessions++;
    await this.removeOrphans(session);

    const { resolved, failed } = await resolveNodes(session, cfg.nodes);
    const s = cfg.subscription;
    const subscription = await session.createSubscription2({
      requestedPublishingInterval: s.publishingIntervalMs,
      // A keep-alive at least every 5 s lets the watchdog notice a silent subscription; the
      // lifetime lets the subscription outlive a short break of the connection.
      requestedLifetimeCount: Math.max(60, Math.ceil(120_000 / s.publishingIntervalMs)),
      requestedMaxKeepAliveCount: Math.max(3, Math.ceil(5_000 / s.publishingIntervalMs)),
      maxNotificationsPerPublish: 0,
      publishingEnabled: true,
      priority: 10,
    });
    this.subscription = subscription;
    const mine = (): boolean => this.subscription === subscription && !this.stopping;
    subscription.on('raw_notification', () => {
      this.lastActivity = Date.now();
    });
    subscription.on('terminated', () => {
      if (mine()) this.rebuild('subscription terminated');
    });
    // node-opcua re-created the subscription on its own (the server lost it while the session
    // lived on): from NodeIds of the first connect and in one request, so it is rebuilt properly.
    subscription.on('subscriptionId_changed', () => {
      if (mine()) this.rebuild('subscription re-created by the client library');
    });

    const { groups, refused } = await monitorAll(subscription, resolved, s, (node, dv) =>
      this.onValue(node, dv),
    );
    this.groups = groups;
    for (const r of refused)
      if (isUnreadable(r.status)) failed.push({ node: nodeLabel(r.item.node), reason: r.status.toString() });
    this.failed = failed;
    for (const f of failed)
      this.log.error({ endpoint: cfg.endpointUrl, ...f }, 'OPC UA node neither monitored nor polled');
    this.startPolling(refused.filter((r) => !isUnreadable(r.status)).map((r) => r.item));
    this.state = 'connected';
    this.lastError = undefined;
    this.lastActivity = Date.now();
    this.startWatchdog(subscription);
    this.log.info(
      {
        endpoint: cfg.endpointUrl,
        monitoredItems: this.monitoredItemCount(),
        polled: this.polled.length,
        failed: failed.length,
      },
      'OPC UA subscription active',
    );
  }

  /**
   * The session is gone on the server; node-opcua has opened a replacement and asks before
   * re-creating the subscription in it. The replacement is closed and node-opcua's repair ended,
   * and the whole connection is built again by this source.
   */
  private async onSessionLost(client: OPCUAClient, replacement: ClientSession): Promise<Error> {
    if (this.client === client && !this.stopping) {
      this.log.warn(
        { endpoint: this.cfg.endpointUrl },
        'OPC UA session lost on the server (restart or session closed); building a new subscription',
      );
      await within(replacement.close(true), CLEANUP_MS).catch(() => undefined);
      this.rebuild('session lost');
    }
    return new Error('session lost: the subscription is rebuilt on a new session by the source');
  }

  /** Subscriptions a lost session left on the server: taken over by this session and deleted. */
  private async removeOrphans(s: ClientSession): Promise<void> {
    const ids = this.orphans.splice(0);
    if (ids.length === 0) return;
    // node-opcua's session implements the raw subscription services; its typings leave them out.
    const session: RawSubscriptionCalls = s as ClientSession & ClientSessionRawSubscriptionService;
    try {
      const res = await within(
        session.transferSubscriptions({ subscriptionIds: ids, sendInitialValues: false }),
        CLEANUP_MS,
      );
      const results = res?.results ?? [];
      const moved = ids.filter((_, i) => results[i]?.statusCode.isGood());
      if (moved.length > 0) {
        await within(session.deleteSubscriptions({ subscriptionIds: moved }), CLEANUP_MS);
        this.log.info(
          { endpoint: this.cfg.endpointUrl, subscriptions: moved },
          'OPC UA subscription left on the server by the lost session deleted',
        );
      }
      // Refused (the server lost it, or does not transfer anonymous subscriptions over an
      // unsecured channel): such a subscription ends with its lifetime on the server.
      const kept = ids.filter((id) => !moved.includes(id));
      if (kept.length > 0)
        this.log.debug(
          { subscriptions: kept, status: results.map((r) => r.statusCode.toString()) },
          'OPC UA subscription of the lost session not taken over',
        );
    } catch (err) {
      this.log.debug({ err: (err as Error).message }, 'OPC UA orphan subscription clean-up failed');
    }
  }

  private startPolling(items: Monitored[]): void {
    this.polled = items;
    if (items.length === 0) return;
    this.log.warn(
      {
        endpoint: this.cfg.endpointUrl,
        nodes: items.map((m) => nodeLabel(m.node)),
        everyMs: this.cfg.pollIntervalMs,
      },
      'OPC UA server refused to monitor these nodes; they are polled instead',
    );
    this.pollTimer = setInterval(() => {
      const session = this.session;
      if (!session || this.state !== 'connected') return;
      session
        .read(items.map((m) => ({ nodeId: m.nodeId, attributeId: AttributeIds.Value })))
        .then((dvs) => dvs.forEach((dv, i) => this.onValue(items[i]!.node, dv)))
        .catch((err: Error) => this.log.warn({ err: err.message }, 'OPC UA poll failed'));
    }, this.cfg.pollIntervalMs);
    this.pollTimer.unref();
  }

  /**
   * A subscription sends data or a keep-alive at least every keep-alive period. Silence for three
   * of them while the connection counts as up means the server no longer serves it (a session
   * dropped without the channel breaking): build everything again.
   */
  private startWatchdog(subscription: ClientSubscription): void {
    clearInterval(this.watchdog);
    const keepAliveMs = subscription.publishingInterval * subscription.maxKeepAliveCount;
    const limit = Math.max(3 * keepAliveMs, 3 * KEEPALIVE_MS);
    this.watchdog = setInterval(() => {
      if (this.state !== 'connected' || this.subscription !== subscription) return;
      const silent = Date.now() - this.lastActivity;
      if (silent > limit) this.rebuild(`subscription silent for ${silent} ms`);
    }, 1000);
    this.watchdog.unref();
  }

  private onValue(node: OpcuaNodeConfig, dv: DataValue): void {
    this.stats.valuesReceived++;
    const sample: OpcuaSample = {
      value: dv.value?.value,
      statusValue: dv.statusCode.value,
      sourceTimestamp: dv.sourceTimestamp,
      serverTimestamp: dv.serverTimestamp,
    };
    const severity = sample.statusValue >>> 30;
    if (severity >= 2) this.stats.badValues++;
    else if (severity === 1) this.stats.uncertainValues++;
    this.batcher.add(node, sample, Date.now());
  }

  private deliver(readings: Reading[]): void {
    const ctx = this.ctx;
    if (!ctx) return;
    const now = Date.now();
    for (const r of readings) {
      this.stats.readings++;
      const rejected = ctx.ingest(r, now);
      if (rejected) {
        this.stats.rejected++;
        this.log.debug(
          { device: r.device, reason: rejected.reason, detail: rejected.detail },
          'OPC UA reading rejected',
        );
      }
    }
  }

  /** Starts again from a new client and session, exactly once however many triggers fire. */
  private rebuild(reason: string): void {
    if (this.running === undefined || this.stopping || this.rebuilding) return;
    this.rebuilding = true;
    this.stats.rebuilds++;
    this.state = 'reconnecting';
    this.lastError = reason;
    const id = this.subscription?.subscriptionId;
    if (id !== undefined && Number.isFinite(id) && id > 0) this.orphans.push(id);
    this.log.warn({ endpoint: this.cfg.endpointUrl, reason }, 'OPC UA connection rebuilt');
    this.running = this.running.then(async () => {
      await this.teardown();
      this.rebuilding = false;
      if (!this.stopping) await this.connectLoop();
    });
  }

  private async teardown(): Promise<void> {
    clearInterval(this.pollTimer);
    clearInterval(this.watchdog);
    this.pollTimer = undefined;
    this.watchdog = undefined;
    this.polled = [];
    this.failed = [];
    const { client, session, subscription } = this;
    this.client = undefined;
    this.session = undefined;
    this.subscription = undefined;
    this.groups = [];
    // The server may be gone or no longer answer: every step is bounded and may fail; closing
    // the session ends its subscription on the server anyway.
    await within(subscription?.terminate(), CLEANUP_MS).catch(() => undefined);
    await within(session?.close(true), CLEANUP_MS).catch(() => undefined);
    await within(client?.disconnect(), CLEANUP_MS).catch(() => undefined);
  }
}

/** The promise, or a rejection once `ms` have passed. */
function within<T>(p: Promise<T> | undefined, ms: number): Promise<T | undefined> {
  if (p === undefined) return Promise.resolve(undefined);
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}
