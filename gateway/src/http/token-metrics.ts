import { Counter, Gauge, type Registry } from 'prom-client';
import type { TokenStore } from './auth.js';
import type { SharedTokenDb } from './shared-tokens.js';

/** The bearer tokens' Prometheus series (ADR 0175), read when scraped. */
export function tokenMetrics(registry: Registry, tokens: TokenStore, shared?: SharedTokenDb): void {
  new Counter({
    name: 'gateway_api_token_refused_total',
    help: 'Requests refused (401) for an unknown, revoked or expired bearer token',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(tokens.refused);
    },
  });
  if (!shared) return;
  new Counter({
    name: 'gateway_api_token_lookups_total',
    help:
      'Cluster mode: bearer lookups of API tokens by how they were answered (query: asked PostgreSQL; ' +
      'cached; miss_cached: unknown a moment ago; outage: PostgreSQL unreachable, recently confirmed; ' +
      'unavailable: 503; throttled: too many unknown tokens, 503)',
    labelNames: ['result'],
    registers: [registry],
    collect() {
      const s = shared.stats();
      this.reset();
      this.inc({ result: 'query' }, s.queries);
      this.inc({ result: 'cached' }, s.cached);
      this.inc({ result: 'miss_cached' }, s.missCached);
      this.inc({ result: 'outage' }, s.outage);
      this.inc({ result: 'unavailable' }, s.unavailable);
      this.inc({ result: 'throttled' }, s.throttled);
    },
  });
  new Gauge({
    name: 'gateway_api_token_revocations_heard',
    help: "Cluster mode: 1 while this instance hears other instances' token revocations (LISTEN)",
    registers: [registry],
    collect() {
      this.set(shared.stats().listening ? 1 : 0);
    },
  });
}
