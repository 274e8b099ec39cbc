import { z } from 'zod';

/** Alarm settings; the gateway config mounts this at key `alarms`. */
const count = (normal: number, critical: number) =>
  z
    .strictObject({
      /** Alarms of one rule across a site within the window that make one incident. */
      normal: z.number().int().min(1).default(normal),
      /** The same when a critical asset ("VIP", key area) is among them. */
      critical: z.number().int().min(1).default(critical),
    })
    .prefault({});

export const alarmsSchema = z.strictObject({
  grouping: z
    .strictObject({
      windowMs: z
        .number()
        .int()
        .positive()
        .default(30 * 60_000),
      // (rule) counts of the same complaint within 30 minutes: 1 safety, 5 (3 VIP) key, 10 (5 VIP) routine.
      counts: z
        .strictObject({
          safety: count(1, 1),
          key: count(5, 3),
          routine: count(10, 5),
        })
        .prefault({}),
    })
    .prefault({})
    // Applied by a config reload, unlike the rest of `alarms` (config/restart.ts).
    .meta({ restart: false }),
  /** Longest answer of list({state: 'all'}). */
  listLimit: z.number().int().min(1).max(100_000).default(1000),
  /** Transitions are written in one transaction per event-loop turn; this caps one transaction. */
  maxBatch: z.number().int().min(1).default(5000),
  /** How often time-based rules (offline, delays) and shelf expiry are checked. */
  tickMs: z.number().int().min(100).max(60_000).default(5000),
  /**
   * Where rule state (running delays, flow windows, meter history) is kept. `with-readings`: each
   * changed device's state in the outbox's group commit, with the readings that changed it, so it
   * is as durable as they are (ADR 0080). `periodic`: in alarms.db every `saveRuleStateMs` (a crash
   * loses up to that much).
   */
  ruleState: z.enum(['with-readings', 'periodic']).default('with-readings'),
  /** How often rule state is saved with `ruleState: periodic`; it is saved on stop too. */
  saveRuleStateMs: z.number().int().min(1000).default(60_000),
});

export type AlarmsConfig = z.infer<typeof alarmsSchema>;
