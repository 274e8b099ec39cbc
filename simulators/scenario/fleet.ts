import type { Kind } from '../types.js';
import type { ScenarioInput } from './schema.js';

/** Share of each kind in a generated fleet: mostly meters, as on a real estate. */
const MIX: [Kind, number][] = [
  ['water-meter', 0.45],
  ['gas-meter', 0.35],
  ['chlorination', 0.1],
  ['env-probe', 0.1],
];

const PREFIX: Record<Kind, string> = {
  'water-meter': 'wm',
  'gas-meter': 'gm',
  chlorination: 'tank',
  'env-probe': 'probe',
};

/** A fleet of `n` devices across sites of `perSite` devices each, for scale runs. */
export function fleetScenario(n: number, perSite = 500): ScenarioInput {
  const sites: NonNullable<ScenarioInput['sites']> = [];
  for (let s = 0, left = n; left > 0; s++, left -= perSite) {
    const size = Math.min(perSite, left);
    const siteId = `site-${String(s + 1).padStart(3, '0')}`;
    let assigned = 0;
    const devices = MIX.map(([kind, share], i) => {
      const count = i === MIX.length - 1 ? size - assigned : Math.round(size * share);
      assigned += count;
      return { id: `${siteId}-${PREFIX[kind]}`, kind, count };
    }).filter((d) => d.count > 0);
    sites.push({ id: siteId, devices });
  }
  return { name: `fleet-${n}`, description: `${n} generated devices`, sites };
}
