import { HttpError, InfluxDB } from '@influxdata/influxdb-client';
import type { InfluxConfig } from '../../config/schema.js';
import { joined } from './split.js';
import { keepAliveAgent, useGzip, type LineTransport, type WriteResponse } from './transport.js';

type Agent = ReturnType<typeof keepAliveAgent>;

/**
 * The InfluxDB 2.x/3.x write API (also 1.8+ and compatible stores) through the official client.
 * Its transport is used directly rather than its WriteApi: the WriteApi buffers and retries on its
 * own, which would hide failures from the writer, while here the outbox owns durability and the
 * writer owns retries. The transport still brings the client's auth, gzip and error decoding.
 */
export class V2Transport implements LineTransport {
  readonly api = 'v2' as const;
  private readonly agent: Agent;
  private readonly client: InfluxDB;
  private readonly path: string;
  /** 0 gzips every body; undefined never does. */
  private readonly gzipThreshold: number | undefined;
  private readonly timeoutMs: number;

  constructor(cfg: InfluxConfig) {
    this.agent = keepAliveAgent(cfg.url, cfg.concurrency);
    this.client = new InfluxDB({
      url: cfg.url,
      token: cfg.token,
      timeout: cfg.timeoutMs,
      transportOptions: { agent: this.agent },
    });
    const params = new URLSearchParams({ org: cfg.org, bucket: cfg.bucket, precision: 'ms' });
    this.path = `/api/v2/write?${params}`;
    this.gzipThreshold = useGzip(cfg) ? 0 : undefined;
    this.timeoutMs = cfg.timeoutMs;
  }

  async write(parts: Buffer[]): Promise<WriteResponse> {
    try {
      // The client's request() takes text (anything else it would send as JSON).
      await this.client.transport.request(this.path, joined(parts).toString('utf8'), {
        method: 'POST',
        headers: { 'content-type': 'text/plain; charset=utf-8' },
        gzipThreshold: this.gzipThreshold,
        // The client's own timeout only reports an idle socket and leaves the request open; an
        // abort destroys it, so a server that never answers cannot tie up the connection pool.
        ...(this.timeoutMs > 0 ? { signal: AbortSignal.timeout(this.timeoutMs) } : {}),
      });
      return { status: 204, body: '' };
    } catch (err) {
      // The client turns every answer >= 300 into an HttpError; anything else is the network.
      if (!(err instanceof HttpError)) throw err;
      const ra = err.headers?.['retry-after'];
      const retryAfter = Array.isArray(ra) ? ra[0] : ra;
      return {
        status: err.statusCode,
        body: err.body ?? err.message,
        ...(typeof retryAfter === 'string' ? { retryAfter } : {}),
      };
    }
  }

  close(): void {
    this.agent.destroy();
  }
}
