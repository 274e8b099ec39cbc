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
  write(body: string): Promise<WriteResponse>;
  /** InfluxDB 1.x only: `CREATE DATABASE` for the configured database. */
  createDatabase?(): Promise<WriteResponse>;
  close(): void;
}

/**
 * One kept-alive connection is all a single in-flight writer needs; reusing it saves a TCP
 * (and TLS) handshake per batch.
 */
export function keepAliveAgent(url: string): HttpAgent | HttpsAgent {
  const opts = { keepAlive: true, maxSockets: 2, keepAliveMsecs: 10_000 };
  return new URL(url).protocol === 'https:' ? new HttpsAgent(opts) : new HttpAgent(opts);
}
