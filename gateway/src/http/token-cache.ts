import type { TokenRecord } from './auth.js';

/** A Map kept in least-recently-used order, never larger than `max` (the oldest entry goes first). */
export class Lru<V> {
  private readonly map = new Map<string, V>();
  constructor(private readonly max: number) {}

  get size(): number {
    return this.map.size;
  }

  get(key: string): V | undefined {
    const v = this.map.get(key);
    if (v === undefined) return undefined;
    // Re-inserted: a Map iterates in insertion order, so the first key is the least recently used.
    this.map.delete(key);
    this.map.set(key, v);
    return v;
  }

  set(key: string, v: V): void {
    this.map.delete(key);
    this.map.set(key, v);
    if (this.map.size > this.max) this.map.delete(this.map.keys().next().value!);
  }

  delete(key: string): void {
    this.map.delete(key);
  }

  clear(): void {
    this.map.clear();
  }

  entries(): IterableIterator<[string, V]> {
    return this.map.entries();
  }
}

export interface TokenCacheLimits {
  /** How long a token PostgreSQL confirmed is taken without asking again, while revocations are heard. */
  positiveMs: number;
  /** How long a hash PostgreSQL did not know answers 401 without asking again. */
  negativeMs: number;
  /** PostgreSQL unreachable: a token it confirmed at most this long ago keeps working. */
  outageMs: number;
  /** Entries kept at most, each cache. */
  maxEntries: number;
  /**
   * Lookups of hashes this instance has never confirmed, asked of PostgreSQL per second at most
   * (bursts up to as many): beyond, 503 until the budget refills, so a flood of made-up bearers
   * cannot load the shared store that carries the leases. Known tokens are never held back.
   */
  unknownPerSecond: number;
}

/** The defaults of ADR 0175: what a facility engineer can state from memory. */
export const TOKEN_CACHE_DEFAULTS: TokenCacheLimits = {
  positiveMs: 10_000,
  negativeMs: 2_000,
  outageMs: 5 * 60_000,
  maxEntries: 10_000,
  unknownPerSecond: 50,
};

/** A token bucket: `rate` takes per second, at most `rate` saved up. Times in ms of any monotonic clock. */
export class Budget {
  private left: number;
  private at: number;

  constructor(
    private readonly rate: number,
    now: number,
  ) {
    this.left = rate;
    this.at = now;
  }

  take(now: number): boolean {
    this.left = Math.min(this.rate, this.left + ((now - this.at) * this.rate) / 1000);
    this.at = now;
    if (this.left < 1) return false;
    this.left -= 1;
    return true;
  }
}

/** When a question was asked, in invalidations seen so far. */
export interface Asked {
  revokes: number;
  creates: number;
}

interface Known {
  rec: TokenRecord;
  /** When PostgreSQL last answered that this hash is a live token. */
  confirmedAt: number;
}

/**
 * The answers of the shared token table kept by one instance (ADR 0175), keyed by the token's
 * sha256: known tokens (until `positiveMs`, and for an outage until `outageMs`) and hashes it did not
 * know (until `negativeMs`). Pure bookkeeping: the caller decides when to trust an entry. An answer
 * read before an invalidation is not stored after it: a live token before a revocation, a miss
 * before a creation (`ask()` marks when the question was asked).
 */
export class TokenCache {
  private readonly known: Lru<Known>;
  private readonly missed: Lru<number>;
  private revokes = 0;
  private creates = 0;

  constructor(readonly limits: TokenCacheLimits = TOKEN_CACHE_DEFAULTS) {
    this.known = new Lru(limits.maxEntries);
    this.missed = new Lru(limits.maxEntries);
  }

  get sizes(): { known: number; missed: number } {
    return { known: this.known.size, missed: this.missed.size };
  }

  /** A live token confirmed at or after `since` and less than `positiveMs` ago. */
  fresh(hash: string, now: number, since: number): TokenRecord | undefined {
    const k = this.known.get(hash);
    if (!k || k.confirmedAt < since || now - k.confirmedAt >= this.limits.positiveMs) return undefined;
    return k.rec;
  }

  /** PostgreSQL unreachable: the token as last confirmed, if that was less than `outageMs` ago. */
  lastKnown(hash: string, now: number): TokenRecord | undefined {
    const k = this.known.get(hash);
    return k && now - k.confirmedAt < this.limits.outageMs ? k.rec : undefined;
  }

  /** Whether the hash has an entry at all (a known token is never throttled as an unknown one). */
  isKnown(hash: string): boolean {
    return this.known.get(hash) !== undefined;
  }

  /** PostgreSQL did not know this hash less than `negativeMs` ago. */
  isMiss(hash: string, now: number): boolean {
    const until = this.missed.get(hash);
    if (until === undefined) return false;
    if (until > now) return true;
    this.missed.delete(hash);
    return false;
  }

  /** Taken before asking PostgreSQL, given back to `answer`. */
  ask(): Asked {
    return { revokes: this.revokes, creates: this.creates };
  }

  /** Stores what PostgreSQL answered, unless an invalidation since the question (`asked`) may contradict it. */
  answer(hash: string, rec: TokenRecord | undefined, at: number, asked: Asked): void {
    if (rec ? asked.revokes !== this.revokes : asked.creates !== this.creates) return;
    if (rec) {
      this.missed.delete(hash);
      this.known.set(hash, { rec, confirmedAt: at });
    } else {
      this.known.delete(hash);
      this.missed.set(hash, at + this.limits.negativeMs);
    }
  }

  /** A token of this name was revoked (here or on another instance): forgotten at once. */
  revoked(name: string): void {
    this.revokes++;
    for (const [hash, k] of [...this.known.entries()]) if (k.rec.name === name) this.known.delete(hash);
  }

  /** A token was created: a hash cached as unknown may be it now. */
  created(): void {
    this.creates++;
    this.missed.clear();
  }

  /** Revocations may have been missed (the LISTEN connection was lost): unknown hashes are asked again. */
  resync(): void {
    this.revokes++;
    this.creates++;
    this.missed.clear();
  }
}
