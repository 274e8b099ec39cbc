import { readFileSync } from 'node:fs';
import {
  AttributeIds,
  ClientSubscription,
  DataChangeFilter,
  DataChangeTrigger,
  DeadbandType,
  MessageSecurityMode,
  OPCUAClient,
  SecurityPolicy,
  StatusCodes,
  TimestampsToReturn,
  UserTokenType,
  makeBrowsePath,
  resolveNodeId,
  type ClientMonitoredItemGroup,
  type ClientSession,
  type DataValue,
  type NodeId,
  type OPCUACertificateManager,
  type UserIdentityInfo,
} from 'node-opcua';
import type { Logger } from '../../gateway/src/core/log.js';
import type { Component, ComponentHealth, Reading } from '../../gateway/src/core/types.js';
import type { Rejection } from '../../gateway/src/ingest/reasons.js';
import { createCertificateManager } from './pki.js';
import { ReadingBatcher, type OpcuaSample } from './readings.js';
import type { OpcuaDeadband, OpcuaEndpointConfig, OpcuaNodeConfig } from './schema.js';

/** What the source hands readings to (the ingest pipeline). */
export interface ReadingSink {
  handleReading(r: Reading, now: number): Rejection | null;
}

type ConnectionState = 'stopped' | 'connecting' | 'connected' | 'reconnecting';

interface Monitored {
  node: OpcuaNodeConfig;
  nodeId: NodeId;
}

/**
 * One OPC UA endpoint: one client, one session, one subscription with the configured nodes as
 * monitored items. After a broken connection node-opcua's client re-opens the channel and either
 * reactivates the session or recreates it and re-creates our subscription itself; this class
 * never creates a second subscription on its own while the first one lives, which is what keeps
 * a server restart from doubling the monitored items (node-opcua#1059). Only when node-opcua
 * gives up on the subscription (terminated) is everything rebuilt, after closing the old session.
 */
export class OpcuaSource implements Component {
  readonly name: string;
  private client?: OPCUAClient;
  private session?: ClientSession;
  private subscription?: ClientSubscription;
  private groups: Array<{ group: ClientMonitoredItemGroup; items: Monitored[] }> = [];
  private polled: Monitored[] = [];
  private pollTimer?: NodeJS.Timeout;
  private retryTimer?: NodeJS.Timeout;
  /** Ends the wait between two connect attempts early (stop). */
  private wake?: () => void;
  private certs?: OPCUACertificateManager;
  private state: ConnectionState = 'stopped';
  private stopping = false;
  private running?: Promise<void>;
  private lastError?: string;
  private readonly batcher: ReadingBatcher;
  private readonly stats = {
    valuesReceived: 0,
    readings: 0,
    rejected: 0,
    badValues: 0,
    sessions: 0,
    reconnections: 0,
  };

  constructor(
    private readonly cfg: OpcuaEndpointConfig,
    private readonly sink: () => ReadingSink,
    private readonly dataDir: string,
    private readonly log: Logger,
  ) {
    this.name = `opcua:${cfg.name}`;
    this.batcher = new ReadingBatcher((rs) => this.deliver(rs));
  }

  /** Never throws for an unreachable server: the connection is retried in the background. */
  async start(): Promise<void> {
    this.stopping = false;
    this.certs = createCertificateManager(this.dataDir);
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
    const state =
      this.state === 'connected'
        ? this.polled.length > 0
          ? 'degraded'
          : 'ok'
        : this.state === 'stopped'
          ? 'stopped'
          : this.state === 'connecting' && this.stats.sessions === 0
            ? 'starting'
            : 'down';
    return {
      state: state === 'starting' && this.lastError ? 'down' : state,
      connection: this.state,
      endpoint: this.cfg.endpointUrl,
      detail: this.lastError,
      subscriptions: this.subscription ? 1 : 0,
      monitoredItems,
      polledNodes: this.polled.length,
      ...this.stats,
    };
  }

  /** Monitored items the server accepted in our subscription (tests check there are no duplicates). */
  monitoredItemCount(): number {
    let n = 0;
    for (const g of this.groups) for (const m of g.group.monitoredItems) if (m.statusCode.isGood()) n++;
    return n;
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
    client.on('connection_lost', () => {
      if (this.stopping) return;
      this.state = 'reconnecting';
      this.log.warn({ endpoint: cfg.endpointUrl }, 'OPC UA connection lost, reconnecting');
    });
    client.on('connection_reestablished', () => {
      this.state = 'connected';
      this.stats.reconnections++;
      this.lastError = undefined;
      this.log.info({ endpoint: cfg.endpointUrl }, 'OPC UA connection re-established');
    });
    client.on('backoff', (retry: number, delayMs: number) => {
      this.lastError = `reconnect attempt ${retry} failed, next in ${delayMs} ms`;
    });
    await client.connect(cfg.endpointUrl);
    // From here on node-opcua re-opens a broken channel and restores the session and our
    // subscription itself; it only does so when its strategy allows retries (-1: without end).
    client.connectionStrategy.maxRetry = -1;
    const session = await client.createSession(this.identity());
    this.session = session;
    this.stats.sessions++;
    session.on('session_closed', () => {
      if (!this.stopping) this.log.warn({ endpoint: cfg.endpointUrl }, 'OPC UA session closed');
    });
    const resolved = await this.resolveNodes(session);
    await this.subscribe(session, resolved);
    this.state = 'connected';
    this.lastError = undefined;
    this.log.info(
      {
        endpoint: cfg.endpointUrl,
        monitoredItems: this.monitoredItemCount(),
        polled: this.polled.length,
      },
      'OPC UA subscription active',
    );
  }

  private identity(): UserIdentityInfo {
    const a = this.cfg.auth;
    if (a.type === 'username')
      return { type: UserTokenType.UserName, userName: a.username, password: a.password };
    if (a.type === 'certificate')
      return {
        type: UserTokenType.Certificate,
        certificateData: pemToDer(readFileSync(a.certificateFile, 'utf8')),
        privateKey: readFileSync(a.privateKeyFile, 'utf8'),
      };
    return { type: UserTokenType.Anonymous };
  }

  /** NodeIds as configured, browse paths translated (one request for all of them). */
  private async resolveNodes(session: ClientSession): Promise<Monitored[]> {
    const out: Monitored[] = [];
    const byPath = this.cfg.nodes.filter((n) => n.browsePath !== undefined);
    // `nsu=<namespace URI>;...` ids name the namespace, not its index, which a server may change
    // between restarts: they are resolved against the server's namespace array on every session.
    const namespaceArray = this.cfg.nodes.some((n) => n.nodeId?.startsWith('nsu='))
      ? await session.readNamespaceArray()
      : undefined;
    for (const n of this.cfg.nodes) {
      if (n.nodeId === undefined) continue;
      try {
        out.push({ node: n, nodeId: resolveNodeId(n.nodeId, { namespaceArray }) });
      } catch (err) {
        this.log.error(
          { nodeId: n.nodeId, err: (err as Error).message, namespaces: namespaceArray },
          'OPC UA node id cannot be resolved on this server; node skipped',
        );
      }
    }
    if (byPath.length === 0) return out;
    const results = await session.translateBrowsePath(
      byPath.map((n) => makeBrowsePath('RootFolder', n.browsePath as string)),
    );
    results.forEach((r, i) => {
      const node = byPath[i]!;
      const target = r.targets?.[0]?.targetId;
      if (r.statusCode.isGood() && target) out.push({ node, nodeId: resolveNodeId(target.toString()) });
      else
        this.log.error(
          { browsePath: node.browsePath, status: r.statusCode.toString() },
          'OPC UA browse path not found; node skipped',
        );
    });
    return out;
  }

  private async subscribe(session: ClientSession, nodes: Monitored[]): Promise<void> {
    const s = this.cfg.subscription;
    const subscription = await session.createSubscription2({
      requestedPublishingInterval: s.publishingIntervalMs,
      // Lifetime and keep-alive counts let the subscription outlive a ~30 s outage of our side.
      requestedLifetimeCount: Math.max(60, Math.ceil(120_000 / s.publishingIntervalMs)),
      requestedMaxKeepAliveCount: Math.max(3, Math.ceil(10_000 / s.publishingIntervalMs)),
      maxNotificationsPerPublish: 0,
      publishingEnabled: true,
      priority: 10,
    });
    this.subscription = subscription;
    subscription.on('terminated', () => {
      if (this.stopping || this.subscription !== subscription) return;
      this.log.warn({ endpoint: this.cfg.endpointUrl }, 'OPC UA subscription terminated; rebuilding');
      this.rebuild();
    });

    // Nodes with the same sampling interval and deadband share monitoring parameters.
    const sets = new Map<string, Monitored[]>();
    for (const m of nodes) {
      const key = JSON.stringify([
        m.node.samplingIntervalMs ?? s.samplingIntervalMs,
        m.node.deadband ?? s.deadband,
      ]);
      const list = sets.get(key) ?? [];
      list.push(m);
      sets.set(key, list);
    }
    const failed: Monitored[] = [];
    for (const list of sets.values()) {
      const first = list[0]!.node;
      const sampling = first.samplingIntervalMs ?? s.samplingIntervalMs;
      const deadband = first.deadband ?? s.deadband;
      const refused = await this.monitor(subscription, list, sampling, deadband);
      // A deadband on a Boolean or a percent deadband without EURange is refused: such nodes
      // are monitored without a filter rather than not at all.
      const retry = refused.filter(
        (r) =>
          deadband.type !== 'none' &&
          (r.status === StatusCodes.BadFilterNotAllowed.value ||
            r.status === StatusCodes.BadMonitoredItemFilterUnsupported.value ||
            r.status === StatusCodes.BadDeadbandFilterInvalid.value),
      );
      const other = refused.filter((r) => !retry.includes(r));
      failed.push(...other.map((r) => r.item));
      if (retry.length > 0) {
        this.log.info(
          { endpoint: this.cfg.endpointUrl, nodes: retry.length, deadband },
          'OPC UA server refused the deadband for some nodes; monitoring them without it',
        );
        const again = await this.monitor(
          subscription,
          retry.map((r) => r.item),
          sampling,
          { type: 'none', value: 0 },
        );
        failed.push(...again.map((r) => r.item));
      }
    }
    this.startPolling(failed);
  }

  /** Creates monitored items in batches; returns the ones the server refused. */
  private async monitor(
    subscription: ClientSubscription,
    items: Monitored[],
    samplingInterval: number,
    deadband: OpcuaDeadband,
  ): Promise<Array<{ item: Monitored; status: number }>> {
    const s = this.cfg.subscription;
    const filter =
      deadband.type === 'none'
        ? null
        : new DataChangeFilter({
            trigger: DataChangeTrigger.StatusValue,
            deadbandType: deadband.type === 'absolute' ? DeadbandType.Absolute : DeadbandType.Percent,
            deadbandValue: deadband.value,
          });
    const refused: Array<{ item: Monitored; status: number }> = [];
    for (let i = 0; i < items.length; i += s.batchSize) {
      const batch = items.slice(i, i + s.batchSize);
      const group = await subscription.monitorItems(
        batch.map((m) => ({ nodeId: m.nodeId, attributeId: AttributeIds.Value })),
        { samplingInterval, queueSize: s.queueSize, discardOldest: s.discardOldest, filter },
        TimestampsToReturn.Both,
      );
      group.on('changed', (_item, dv: DataValue, index: number) => {
        const m = batch[index];
        if (m) this.onValue(m.node, dv);
      });
      batch.forEach((m, j) => {
        const st = group.monitoredItems[j]?.statusCode;
        if (st && !st.isGood()) refused.push({ item: m, status: st.value });
      });
      this.groups.push({ group, items: batch });
    }
    return refused;
  }

  private startPolling(items: Monitored[]): void {
    this.polled = items;
    if (items.length === 0) return;
    for (const m of items)
      this.log.warn(
        { node: m.node.nodeId ?? m.node.browsePath, nodeId: m.nodeId.toString() },
        'OPC UA server refused to monitor this node',
      );
    this.log.warn(
      { endpoint: this.cfg.endpointUrl, nodes: items.length, everyMs: this.cfg.pollIntervalMs },
      'OPC UA nodes polled instead of monitored',
    );
    this.pollTimer = setInterval(() => {
      const session = this.session;
      if (!session || this.state !== 'connected') return;
      session
        .read(items.map((m) => ({ nodeId: m.nodeId, attributeId: AttributeIds.Value })))
        .then((dvs) => dvs.forEach((dv, i) => this.onValue(items[i]!.node, dv)))
        .catch((err: Error) => this.log.warn({ err }, 'OPC UA poll failed'));
    }, this.cfg.pollIntervalMs);
    this.pollTimer.unref();
  }

  private onValue(node: OpcuaNodeConfig, dv: DataValue): void {
    this.stats.valuesReceived++;
    const sample: OpcuaSample = {
      value: dv.value?.value,
      statusValue: dv.statusCode.value,
      sourceTimestamp: dv.sourceTimestamp,
      serverTimestamp: dv.serverTimestamp,
    };
    if (sample.statusValue >>> 30 >= 2) this.stats.badValues++;
    this.batcher.add(node, sample, Date.now());
  }

  private deliver(readings: Reading[]): void {
    const sink = this.sink();
    const now = Date.now();
    for (const r of readings) {
      this.stats.readings++;
      const rejected = sink.handleReading(r, now);
      if (rejected) {
        this.stats.rejected++;
        this.log.debug(
          { device: r.device, reason: rejected.reason, detail: rejected.detail },
          'OPC UA reading rejected',
        );
      }
    }
  }

  /** node-opcua gave the subscription up: start again from a fresh session, exactly once. */
  private rebuild(): void {
    if (this.running === undefined) return;
    const previous = this.running;
    this.running = previous.then(async () => {
      await this.teardown();
      if (!this.stopping) await this.connectLoop();
    });
  }

  private async teardown(): Promise<void> {
    clearInterval(this.pollTimer);
    this.pollTimer = undefined;
    this.polled = [];
    const { client, session, subscription } = this;
    this.client = undefined;
    this.session = undefined;
    this.subscription = undefined;
    this.groups = [];
    try {
      await subscription?.terminate();
    } catch {
      // The server may already be gone; the session close below ends the subscription anyway.
    }
    try {
      await session?.close(true);
    } catch {
      // As above: nothing to close on a server that is not there.
    }
    await client?.disconnect().catch(() => undefined);
  }
}

function pemToDer(pem: string): Buffer {
  const b64 = pem.replace(/-----(BEGIN|END) CERTIFICATE-----/g, '').replace(/\s+/g, '');
  return Buffer.from(b64, 'base64');
}
