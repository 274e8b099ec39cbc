import { describe, expect, it } from 'vitest';
import { configSchema } from '../../gateway/src/config/schema.js';

const problems = (input: unknown): string[] => {
  const r = configSchema.safeParse(input);
  return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
};

const cluster = {
  storage: { postgres: 'postgres://gw@127.0.0.1:5432/gw' },
  cluster: { instanceId: 'gw-1' },
  mqtt: { url: 'mqtt://127.0.0.1:1883' },
};
const sparkplug = { enabled: true, hostId: 'facility-gw', groups: ['facility'] };

describe('Sparkplug B in cluster mode (ADR 0181)', () => {
  it('is accepted', () => {
    expect(problems({ ...cluster, sparkplug })).toEqual([]);
  });

  it('keeps the other cluster start-up errors', () => {
    const p = problems({ storage: cluster.storage, sparkplug });
    expect(p.some((x) => x.startsWith('cluster.instanceId:'))).toBe(true);
    expect(p.some((x) => x.startsWith('mqtt.url:'))).toBe(true);
    expect(p.some((x) => x.startsWith('sparkplug'))).toBe(false);
  });
});
