import { pino, type Logger } from 'pino';

export type { Logger };

/** The root logger. Modules take `log.child({ module: '...' })`. */
export function createLogger(level = process.env.GATEWAY_LOG_LEVEL ?? 'info'): Logger {
  return pino({ level, base: { service: 'facility-gateway' } });
}

/**
 * Logs at most one line per `intervalMs` per key and says how many were suppressed meanwhile,
 * so a device sending garbage 1,000 times a second cannot flood the log.
 */
export class RateLimitedLog {
  private readonly last = new Map<string, { at: number; suppressed: number }>();
  constructor(
    private readonly log: Logger,
    private readonly intervalMs = 10_000,
  ) {}

  warn(key: string, obj: Record<string, unknown>, msg: string, now = Date.now()): void {
    const entry = this.last.get(key);
    if (entry && now - entry.at < this.intervalMs) {
      entry.suppressed++;
      return;
    }
    const suppressed = entry?.suppressed ?? 0;
    this.last.set(key, { at: now, suppressed: 0 });
    if (this.last.size > 10_000) this.last.clear();
    this.log.warn(suppressed > 0 ? { ...obj, suppressed } : obj, msg);
  }
}
