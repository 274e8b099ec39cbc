/**
 * The integrator's pins (`fleet.pinned`, fleet/pin-schema.ts) read for one value: which pin, if
 * any, keeps operators from changing it. Pure functions: the service refuses a change with the pin
 * it names, and leaves out an operator's stored value that a pin added later covers.
 */

/** The pin covering an operator's override of `rule` (any scope), or undefined. */
export function rulePin(pins: readonly string[], rule: string): string | undefined {
  return pins.find((p) => p === 'rules.overrides' || p === `rules.overrides.${rule}`);
}

/** The pin covering device `site/id`, or undefined. */
export function devicePin(pins: readonly string[], key: string): string | undefined {
  const site = key.slice(0, key.indexOf('/'));
  return pins.find((p) => p === 'devices' || p === `devices.${site}` || p === `devices.${key}`);
}

/** The pin covering the escalation chain and the on-call rota, or undefined. */
export function contactsPin(pins: readonly string[]): string | undefined {
  return pins.find((p) => p === 'workorders.contacts');
}

/** The pin covering maintenance schedule `id` (its changes, moves and skips), or undefined. */
export function schedulePin(pins: readonly string[], id: string): string | undefined {
  return pins.find((p) => p === 'workorders.maintenance' || p === `workorders.maintenance.${id}`);
}

/** The refusal's message: what was refused and the pin, as the config file spells it. */
export function pinnedMessage(what: string, pin: string): string {
  return `${what} is pinned in the config file (fleet.pinned: "${pin}"); change it there`;
}
