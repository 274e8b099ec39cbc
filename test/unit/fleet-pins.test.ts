import { describe, expect, it } from 'vitest';
import { configSchema } from '../../gateway/src/config/schema.js';
import { contactsPin, devicePin, pinnedMessage, rulePin } from '../../gateway/src/fleet/pins.js';

// The integrator's pins (`fleet.pinned`, docs/fleet.md "Pinning"): which pin covers a value.
describe('fleet pins', () => {
  const pins = ['rules.overrides.chlorine.free.low', 'devices.estate/tank-1', 'devices.north'];

  it('a rule pin covers that rule only; `rules.overrides` covers every rule', () => {
    expect(rulePin(pins, 'chlorine.free.low')).toBe('rules.overrides.chlorine.free.low');
    expect(rulePin(pins, 'chlorine.free.high')).toBeUndefined();
    // A rule whose id starts like the pinned one is another rule.
    expect(rulePin(pins, 'chlorine.free.low2')).toBeUndefined();
    expect(rulePin(['rules.overrides'], 'anything.at.all')).toBe('rules.overrides');
  });

  it('a device pin covers the device, a site pin every device of the site, `devices` all', () => {
    expect(devicePin(pins, 'estate/tank-1')).toBe('devices.estate/tank-1');
    expect(devicePin(pins, 'estate/tank-2')).toBeUndefined();
    expect(devicePin(pins, 'north/wm-1')).toBe('devices.north');
    expect(devicePin(pins, 'northwest/wm-1')).toBeUndefined();
    expect(devicePin(['devices'], 'any/one')).toBe('devices');
  });

  it('contacts are pinned as a whole; the message names the pin as the file spells it', () => {
    expect(contactsPin(pins)).toBeUndefined();
    expect(contactsPin(['workorders.contacts'])).toBe('workorders.contacts');
    expect(pinnedMessage('rule r', 'rules.overrides.r')).toBe(
      'rule r is pinned in the config file (fleet.pinned: "rules.overrides.r"); change it there',
    );
  });

  it('the config file refuses a pin that names nothing pinnable, with its key path', () => {
    expect(configSchema.parse({ fleet: { pinned: pins } }).fleet.pinned).toEqual(pins);
    const bad = configSchema.safeParse({ fleet: { pinned: ['devices.estate/tank-1', 'mqtt.url'] } });
    expect(bad.success).toBe(false);
    expect(bad.error!.issues.map((i) => i.path.join('.'))).toEqual(['fleet.pinned.1']);
    expect(configSchema.parse({}).fleet.pinned).toEqual([]);
  });
});
