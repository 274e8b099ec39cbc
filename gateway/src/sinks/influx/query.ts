import type { InfluxConfig } from '../../config/schema.js';
import { FIELD_NAME_PATTERN, ID_PATTERN } from '../../ingest/catalogue.js';
import { BAD_SUFFIX, QUALITY_SUFFIX } from '../../ingest/quality.js';

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

/** One time bucket of a downsampled history: `ts` is the bucket's start. */
export interface Bucket {
  ts: number;
  /** Numbers: the mean; booleans: true when the metric was true at any time in the bucket. */
  value: number | boolean | null;
  /** Lowest and highest value in the bucket, so a short spike survives downsampling. */
  min: number | boolean | null;
  max: number | boolean | null;
}

/** A value its source did not vouch for, left out of the history and listed apart (ADR 0070). */
export interface NotGood {
  ts: number;
  quality: 'bad' | 'uncertain';
}

/** A bucket of a downsampled history that had values that are not good, and how many. */
export interface NotGoodBucket {
  ts: number;
  count: number;
}

/** The raw history: good values, the instants of the others, and the rows the query returned. */
export interface History {
  points: Point[];
  notGood: NotGood[];
  /** Rows read (good and not), what `limit` bounds. */
  rows: number;
}

/** The shortest bucket: no meter reports more often than every second. */
export const MIN_BUCKET_MS = 1000;

/** The bucket length that gives about `points` buckets over `[from, to]`, whole milliseconds. */
export function bucketMs(from: number, to: number, points: number): number {
  return Math.max(MIN_BUCKET_MS, Math.ceil((to - from + 1) / Math.max(1, points)));
}

interface QueryResult {
  error?: string;
  series?: Array<{ name?: string; tags?: Record<string, string>; columns: string[]; values: unknown[][] }>;
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

  /** The metric's good values, oldest first (see history()). */
  async readings(q: ReadingsQuery): Promise<Point[]> {
    return (await this.history(q)).points;
  }

  /**
   * The metric's good values and, apart, when it had values that are not good: those are stored
   * under `<metric>_bad` with `<metric>_quality` (ADR 0070), so selecting the metric sees only good
   * ones. Points written before that, with one `quality` field for the whole point, are read with
   * it and counted as not good when it says so.
   */
  async history(q: ReadingsQuery): Promise<History> {
    const m = q.metric;
    // An extra metric may itself be named `quality`; it then has no point-wide quality to read.
    const old = m === 'quality' ? '' : ',"quality"';
    const statement =
      `SELECT "${m}","${m}${QUALITY_SUFFIX}"${old} FROM ${this.where(q)} ` +
      `ORDER BY time ASC LIMIT ${q.limit}`;
    const rows = this.seriesOf(await this.query(statement), q.measurement);
    const points: Point[] = [];
    const notGood: NotGood[] = [];
    for (const v of rows) {
      const ts = Number(v[0]);
      const own = notGoodOf(v[2]);
      if (own) notGood.push({ ts, quality: own });
      if (v[1] === null || v[1] === undefined) continue;
      const whole = old ? notGoodOf(v[3]) : null;
      if (whole) notGood.push({ ts, quality: whole });
      else points.push({ ts, value: v[1] as Point['value'] });
    }
    return { points, notGood, rows: rows.length };
  }

  /** Per bucket of `intervalMs` (as downsampled()), how many values were not good. */
  async notGoodBuckets(q: Omit<ReadingsQuery, 'limit'>, intervalMs: number): Promise<NotGoodBucket[]> {
    const group = ` GROUP BY time(${intervalMs}ms, ${Math.floor(q.from) % intervalMs}ms) fill(none)`;
    const rows = this.seriesOf(
      await this.query(`SELECT count("${q.metric}${BAD_SUFFIX}") FROM ${this.where(q)}${group}`),
      q.measurement,
    );
    return rows.map((v) => ({ ts: Number(v[0]), count: Number(v[1]) }));
  }

  /**
   * History over `[from, to]` in buckets of `intervalMs` (GROUP BY time, empty buckets left out):
   * mean, min and max of numbers; for booleans (which InfluxQL cannot average) whether any and
   * whether every reading in the bucket was true. Buckets start at `from`.
   */
  async downsampled(q: Omit<ReadingsQuery, 'limit'>, intervalMs: number): Promise<Bucket[]> {
    const m = `"${q.metric}"`;
    const group = ` GROUP BY time(${intervalMs}ms, ${Math.floor(q.from) % intervalMs}ms) fill(none)`;
    try {
      const rows = this.seriesOf(
        await this.query(`SELECT mean(${m}), min(${m}), max(${m}) FROM ${this.where(q)}${group}`),
        q.measurement,
      );
      return rows.map((v) => ({ ts: Number(v[0]), value: num(v[1]), min: num(v[2]), max: num(v[3]) }));
    } catch (err) {
      if (!(err instanceof QueryError && /boolean/i.test(err.message))) throw err;
    }
    const rows = this.seriesOf(
      await this.query(`SELECT max(${m}), min(${m}) FROM ${this.where(q)}${group}`),
      q.measurement,
    );
    return rows.map((v) => ({ ts: Number(v[0]), value: bool(v[1]), min: bool(v[2]), max: bool(v[1]) }));
  }

  /** `"measurement" WHERE site, device and time`, names checked so they embed without escaping. */
  private where(q: Omit<ReadingsQuery, 'limit'>): string {
    if (!FIELD_NAME_PATTERN.test(q.metric))
      throw new QueryError(`metric "${q.metric}" is not a valid name`, 400);
    if (!ID_PATTERN.test(q.site) || !ID_PATTERN.test(q.device))
      throw new QueryError('bad site or device id', 400);
    if (!/^[A-Za-z0-9_]+$/.test(q.measurement)) throw new QueryError('bad measurement', 400);
    return (
      `"${q.measurement}" WHERE "site" = '${q.site}' AND "device" = '${q.device}' ` +
      `AND time >= ${Math.floor(q.from)}ms AND time <= ${Math.floor(q.to)}ms`
    );
  }

  /**
   * The rows of a SELECT's one series. VictoriaMetrics answers every `/query` with a list of
   * databases (it serves no InfluxQL SELECT): that is an error here, not a history.
   */
  private seriesOf(r: QueryResult | undefined, measurement: string): unknown[][] {
    const series = r?.series?.[0];
    if (!series) return [];
    if (series.name !== measurement)
      throw new QueryError(
        `the store answered the InfluxQL query with "${series.name}" instead of "${measurement}": ` +
          'it serves no InfluxQL SELECT (VictoriaMetrics does not), so there is no history',
        502,
      );
    return series.values;
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
      if (site && device && hasGoodValue(s.columns, s.values[0])) out.add(`${site}/${device}`);
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

/**
 * Whether a `count(*)` row counted a good value: a meter whose every value in the period was bad
 * (stored as `<metric>_bad`, `<metric>_quality`) was not read. The old point-wide `quality`
 * field is not a value either.
 */
function hasGoodValue(columns: string[], row: unknown[] | undefined): boolean {
  if (!row) return false;
  for (let i = 0; i < columns.length; i++) {
    const c = columns[i]!;
    if (c === 'time' || c === 'count_quality') continue;
    if (c.endsWith(BAD_SUFFIX) || c.endsWith(QUALITY_SUFFIX)) continue;
    if (typeof row[i] === 'number' && (row[i] as number) > 0) return true;
  }
  return false;
}

const notGoodOf = (v: unknown): NotGood['quality'] | null => (v === 'bad' || v === 'uncertain' ? v : null);
const num = (v: unknown): number | null => (typeof v === 'number' ? v : null);
const bool = (v: unknown): boolean | null => (typeof v === 'boolean' ? v : null);
