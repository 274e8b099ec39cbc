import { request as httpRequest, type Agent, type IncomingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { gzip as gzipCb, constants as zlib } from 'node:zlib';
import { promisify } from 'node:util';
import type { InfluxConfig } from '../../config/schema.js';
import { joined } from './split.js';
import { keepAliveAgent, useGzip, type LineTransport, type WriteResponse } from './transport.js';

const gzip = promisify(gzipCb);
/** Error bodies are short; a misbehaving proxy's HTML page is cut here. */
const MAX_ERROR_BODY = 64 * 1024;

/**
 * The InfluxDB 1.x API: `POST /write?db=&rp=&precision=ms`, `POST /query` for CREATE DATABASE.
 * Plain node:http so the whole exchange (gzip, status, Retry-After, body) is in our hands.
 */
export class V1Transport implements LineTransport {
  readonly api = 'v1' as const;
  private readonly agent: Agent;
  private readonly base: URL;
  private readonly headers: Record<string, string>;

  private readonly gzipOn: boolean;

  constructor(private readonly cfg: InfluxConfig) {
    this.gzipOn = useGzip(cfg);
    this.base = new URL(cfg.url);
    this.agent = keepAliveAgent(cfg.url, cfg.concurrency) as Agent;
    this.headers = {};
    // Basic auth keeps the password out of URLs (and so out of proxy logs); 1.x accepts both.
    if (cfg.username !== undefined) {
      const cred = Buffer.from(`${cfg.username}:${cfg.password ?? ''}`).toString('base64');
      this.headers.authorization = `Basic ${cred}`;
    } else if (cfg.token) {
      this.headers.authorization = `Token ${cfg.token}`;
    }
  }

  async write(parts: Buffer[]): Promise<WriteResponse> {
    const params = new URLSearchParams({ db: this.cfg.db, precision: 'ms' });
    if (this.cfg.retentionPolicy) params.set('rp', this.cfg.retentionPolicy);
    const headers: Record<string, string> = { ...this.headers, 'content-type': 'text/plain; charset=utf-8' };
    let payload = parts;
    if (this.gzipOn) {
      // Fastest level: line protocol compresses about 8x even so, and the CPU is shared with
      // ingest on a small edge box. zlib runs on the libuv pool, off the event loop.
      payload = [await gzip(joined(parts), { level: zlib.Z_BEST_SPEED })];
      headers['content-encoding'] = 'gzip';
    }
    return this.post(`write?${params}`, payload, headers);
  }

  async createDatabase(): Promise<WriteResponse> {
    const q = `CREATE DATABASE "${this.cfg.db.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
    const res = await this.post('query', [Buffer.from(new URLSearchParams({ q }).toString())], {
      ...this.headers,
      'content-type': 'application/x-www-form-urlencoded',
    });
    // /query answers 200 even when the statement failed; the error is inside the JSON.
    if (res.status === 200 && /"error"\s*:/.test(res.body)) return { ...res, status: 400 };
    return res;
  }

  /** Sends the buffers one after the other as one body (a batch's rows are never copied together). */
  private post(path: string, payload: Buffer[], headers: Record<string, string>): Promise<WriteResponse> {
    let length = 0;
    for (const p of payload) length += p.length;
    const url = new URL(path, this.base.href.endsWith('/') ? this.base.href : this.base.href + '/');
    const request = url.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise<WriteResponse>((resolve, reject) => {
      const req = request(
        url,
        {
          method: 'POST',
          agent: this.agent,
          headers: { ...headers, 'content-length': String(length) },
          timeout: this.cfg.timeoutMs || undefined,
        },
        (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (c: Buffer) => {
            if (size < MAX_ERROR_BODY) chunks.push(c);
            size += c.length;
          });
          res.on('error', reject);
          res.on('end', () =>
            resolve({
              status: res.statusCode ?? 0,
              body: Buffer.concat(chunks).toString('utf8'),
              ...retryAfterOf(res.headers),
            }),
          );
        },
      );
      req.on('timeout', () => req.destroy(new Error(`no answer within ${this.cfg.timeoutMs} ms`)));
      req.on('error', reject);
      for (let i = 0; i < payload.length - 1; i++) req.write(payload[i]!);
      req.end(payload[payload.length - 1]);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

function retryAfterOf(headers: IncomingHttpHeaders): { retryAfter?: string } {
  const v = headers['retry-after'];
  return typeof v === 'string' ? { retryAfter: v } : {};
}
