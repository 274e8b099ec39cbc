import { z } from 'zod';

/**
 * What an integrator pins in the config file so operators cannot change it from the dashboard or
 * the API (docs/fleet.md "Pinning", ADR 0147). One list of key paths, reviewable in one place:
 *
 * - `rules.overrides`: no operator rule overrides at all; `rules.overrides.<rule>`: none of that rule;
 * - `devices`: no operator device changes; `devices.<site>`: none at that site;
 *   `devices.<site>/<id>`: none of that device (edit, retire, move, adopt);
 * - `workorders.contacts`: the escalation chain and the on-call rota stay the file's;
 * - `workorders.maintenance`: no operator schedule changes, moves or skips;
 *   `workorders.maintenance.<id>`: none of that schedule.
 */
export const PIN_PATTERN =
  /^(rules\.overrides(\.[a-z0-9][a-z0-9_.-]{0,99})?|devices(\.[A-Za-z0-9_-]{1,64}(\/[A-Za-z0-9_-]{1,64})?)?|workorders\.contacts|workorders\.maintenance(\.[A-Za-z0-9_.-]{1,64})?)$/;

export const fleetConfigSchema = z.strictObject({
  pinned: z
    .array(
      z
        .string()
        .regex(
          PIN_PATTERN,
          'must be rules.overrides[.<rule>], devices[.<site>[/<id>]], workorders.contacts or workorders.maintenance[.<schedule>]',
        ),
    )
    .default([]),
});
export type FleetConfig = z.infer<typeof fleetConfigSchema>;
