import type { GatewayConfig } from '../config/schema.js';
import type { Logger } from '../core/log.js';
import type { Source } from '../core/source.js';
import type { RejectPublisher } from '../ingest/pipeline.js';
import { contextFactory, type ContextDeps } from './context.js';
import { loadSources, SOURCES, type SourceRegistry } from './registry.js';
import { SupervisedSource } from './supervisor.js';

/** Restart delays of a failed source: 1 s, doubling to 1 min. */
const BACKOFF = { minMs: 1000, maxMs: 60_000 };

/**
 * Every configured source, each under its own supervisor. Built in two steps because the ingest
 * pipeline and the sources need each other: the pipeline republishes rejections through the
 * source that can (`rejects`), and the sources hand readings to the pipeline (`supervise`).
 */
export class SourcesModule {
  /** The supervised sources, in start order; these are the gateway's components. */
  supervised: SupervisedSource[] = [];
  /** Forwards rejected messages to the source that publishes them (MQTT), if any. */
  readonly rejects: RejectPublisher;

  private constructor(readonly sources: Source[]) {
    const publisher = sources.find(isRejectPublisher);
    this.rejects = {
      publishRejected: (site, kind, device, payload) =>
        publisher?.publishRejected(site, kind, device, payload),
      // How the republished messages fared (MQTT: QoS 1 until PUBACK, bounded), for /metrics.
      deadLetterStats: () => publisher?.deadLetterStats?.(),
    };
  }

  static async load(cfg: GatewayConfig, registry: SourceRegistry = SOURCES): Promise<SourcesModule> {
    return new SourcesModule(await loadSources(cfg, registry));
  }

  /** Wraps every source in a supervisor that builds its context from `deps`. */
  supervise(deps: Omit<ContextDeps, 'rejects'>, log: Logger): SupervisedSource[] {
    const context = contextFactory({ ...deps, rejects: this.rejects });
    this.supervised = this.sources.map(
      (s) => new SupervisedSource(s, context, { backoff: BACKOFF, log: log.child({ module: 'supervisor' }) }),
    );
    return this.supervised;
  }

  /** The first source of that name (for the gateway's typed accessors). */
  byName(name: string): Source | undefined {
    return this.sources.find((s) => s.name === name);
  }
}

function isRejectPublisher(s: Source): s is Source & RejectPublisher {
  return typeof (s as Partial<RejectPublisher>).publishRejected === 'function';
}
