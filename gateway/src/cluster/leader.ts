import type { Logger } from '../core/log.js';
import type { Component, ComponentHealth } from '../core/types.js';

/**
 * The cluster-wide singletons (escalation tick, preventive maintenance, notification delivery, the
 * monthly report): each is wrapped here and runs only while this member is the leader. Without
 * cluster mode the composition root starts them directly, as before.
 */
export class LeaderDuties {
  private readonly duties: LeaderBound[] = [];
  private leading = false;
  private chain: Promise<void> = Promise.resolve();

  constructor(private readonly log: Logger) {}

  get isLeader(): boolean {
    return this.leading;
  }

  /** A component that starts with leadership and stops with its loss. */
  bind<C extends Component>(inner: C): LeaderBound {
    const b = new LeaderBound(inner, this);
    this.duties.push(b);
    return b;
  }

  /** Called by the membership loop; start and stop run one after the other, never overlapping. */
  set(leading: boolean): Promise<void> {
    if (leading === this.leading) return this.chain;
    this.leading = leading;
    this.log.info({ leader: leading }, leading ? 'this member is now the cluster leader' : 'leadership lost');
    this.chain = this.chain.then(async () => {
      for (const d of leading ? this.duties : [...this.duties].reverse()) await d.follow();
    });
    return this.chain;
  }

  /** Waits for a start or stop under way. */
  settled(): Promise<void> {
    return this.chain;
  }
}

/** One singleton: its lifecycle slot is taken at start-up; it runs while its owner leads. */
export class LeaderBound implements Component {
  private wanted = false;
  private running = false;

  constructor(
    private readonly inner: Component,
    private readonly duties: LeaderDuties,
  ) {}

  get name(): string {
    return this.inner.name;
  }

  async start(): Promise<void> {
    this.wanted = true;
    await this.follow();
  }

  async stop(): Promise<void> {
    this.wanted = false;
    await this.duties.settled();
    await this.follow();
  }

  /** Starts or stops the inner component to match (wanted and leading). */
  async follow(): Promise<void> {
    const should = this.wanted && this.duties.isLeader;
    if (should === this.running) return;
    this.running = should;
    if (should) await this.inner.start();
    else await this.inner.stop();
  }

  health(): ComponentHealth {
    return this.running
      ? this.inner.health()
      : { state: 'ok', detail: 'standby: another member is the leader' };
  }
}
