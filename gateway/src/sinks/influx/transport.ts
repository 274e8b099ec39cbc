import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';

/** A write request's answer, whatever the API. Network failures and timeouts reject instead. */
export interface WriteResponse {
  status: number;
  body: string;
  retryAfter?: string;
}

/** Sends line protocol to one InfluxDB API. One request at a time; the writer owns retries. */
export interface LineTransport {
  readonly api: 'v1' | 'v2';
  /** `parts`: newline-terminated line protocol, UTF-8, sent one after the other as one body. */
  write(parts: Buffer[]): Promise<WriteResponse>;
  /** InfluxDB 1.x only: `CREATE DATABASE` for the configured database. */
  createDatabase?(): Promise<WriteResponse>;
  close(): void;
}

/**
 * One kept-alive connection is all a single in-flight writer needs; reusing it saves a TCP
 * (and TLS) handshake per batch.
 */
export function keepAliveAgent(url: string, maxSockets = 2): HttpAgent | HttpsAgent {
  const opts = { keepAlive: true, maxSockets, keepAliveMsecs: 10_000 };
  return new URL(url).protocol === 'https:' ? new HttpsAgent(opts) : new HttpAgent(opts);
}

/** Whether to gzip request bodies: always, never, or (auto) unless the server is on loopback. */
export function useGzip(cfg: { gzip: boolean | 'auto'; url: string }): boolean {
  if (cfg.gzip !== 'auto') return cfg.gzip;
  const host = new URL(cfg.url).hostname.replace(/^\[|\]$/g, '');
  return !(host === 'localhost' || host === '::1' || /^127\./.test(host));
}
