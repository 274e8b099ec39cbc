import type { InfluxConfig } from '../../config/schema.js';
import { FIELD_NAME_PATTERN, ID_PATTERN } from '../../ingest/catalogue.js';

export interface ReadingsQuery {
  measurement: string;
  site: string;
  device: string;
  metric: string;
  /** Epoch ms, inclusive. */
  from: number;
  to: number;
  limit: number;
}

export interface Point {
  ts: number;
  value: number | boolean | string | null;
}

interface QueryResult {
  error?: string;
  series?: Array<{ tags?: Record<string, string>; columns: string[]; values: unknown[][] }>;
}

export class QueryError extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

/**
 * History of one metric, read back with InfluxQL over `/query`: InfluxDB 1.x natively, InfluxDB
 * 2.x through its v1-compatible endpoint (a DBRP mapping for the bucket) and InfluxDB 3.x, which
 * speaks InfluxQL per database. Names are checked against the same patterns as ingest, so they
 * can be embedded in the statement without escaping tricks.
 */
export class InfluxReader {
  constructor(private readonly cfg: InfluxConfig) {}

  async readings(q: ReadingsQuery): Promise<Point[]> {
    if (!FIELD_NAME_PATTERN.test(q.metric))
      throw new QueryError(`metric "${q.metric}" is not a valid name`, 400);
    if (!ID_PATTERN.test(q.site) || !ID_PATTERN.test(q.device))
      throw new QueryError('bad site or device id', 400);
    if (!/^[A-Za-z0-9_]+$/.test(q.measurement)) throw new QueryError('bad measurement', 400);
    const statement =
      `SELECT "${q.metric}" FROM "${q.measurement}" WHERE "site" = '${q.site}' AND "device" = '${q.device}' ` +
      `AND time >= ${Math.floor(q.from)}ms AND time <= ${Math.floor(q.to)}ms ORDER BY time ASC LIMIT ${q.limit}`;
    const r = await this.query(statement);
    if (!r) return [];
    const series = r.series?.[0];
    if (!series) return [];
    return series.values.map((v) => ({ ts: Number(v[0]), value: (v[1] ?? null) as Point['value'] }));
  }

  /**
   * The devices of a measurement that wrote at least one point in `[from, to)`, as `site/device`.
   * For read rates of a period that has ended: the registry keeps only each meter's latest reading.
   */
  async reportedDevices(measurement: string, from: number, to: number): Promise<Set<string>> {
    if (!/^[A-Za-z0-9_]+$/.test(measurement)) throw new QueryError('bad measurement', 400);
    const r = await this.query(
      `SELECT count(*) FROM "${measurement}" WHERE time >= ${Math.floor(from)}ms AND time < ${Math.floor(to)}ms ` +
        'GROUP BY "site","device"',
    );
    const out = new Set<string>();
    for (const s of r?.series ?? []) {
      const site = s.tags?.site;
      const device = s.tags?.device;
      if (site && device) out.add(`${site}/${device}`);
    }
    return out;
  }

  /** One InfluxQL statement; undefined when the database does not exist yet (no history). */
  private async query(statement: string): Promise<QueryResult | undefined> {
    const url = new URL('/query', this.cfg.url);
    url.searchParams.set('db', this.cfg.api === 'v1' ? this.cfg.db : this.cfg.bucket);
    if (this.cfg.api === 'v1' && this.cfg.retentionPolicy)
      url.searchParams.set('rp', this.cfg.retentionPolicy);
    url.searchParams.set('epoch', 'ms');
    url.searchParams.set('q', statement);
    const headers: Record<string, string> = {};
    if (this.cfg.token) headers.authorization = `Token ${this.cfg.token}`;
    else if (this.cfg.username !== undefined) {
      headers.authorization = `Basic ${Buffer.from(`${this.cfg.username}:${this.cfg.password ?? ''}`).toString('base64')}`;
    }
    let res: Response;
    try {
      res = await fetch(url, { headers, signal: AbortSignal.timeout(this.cfg.timeoutMs) });
    } catch (err) {
      throw new QueryError(`InfluxDB not reachable: ${(err as Error).message}`, 503);
    }
    const text = await res.text();
    if (!res.ok) throw new QueryError(`InfluxDB answered ${res.status}: ${text.slice(0, 300)}`, 502);
    const body = JSON.parse(text) as { results?: QueryResult[] };
    const r = body.results?.[0];
    if (r?.error) {
      // A database that does not exist yet simply has no history.
      if (/database not found/i.test(r.error)) return undefined;
      throw new QueryError(`InfluxDB: ${r.error}`, 502);
    }
    return r ?? {};
  }
}
