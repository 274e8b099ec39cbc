import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../gateway/src/config/load.js';

/** Two instances with one MQTT client id take each other's session over at every reconnect. */
describe('MQTT client id and the instance id', () => {
  it('stays the fixed default without an instance id (a persistent session keeps its queue across upgrades)', () => {
    expect(loadConfig(undefined, {}).mqtt.clientId).toBe('facility-gateway');
  });

  it('becomes facility-gateway-<instanceId> when an instance id is given', () => {
    const cfg = loadConfig(undefined, { GATEWAY_INSTANCE_ID: 'gw-2' });
    expect(cfg.cluster.instanceId).toBe('gw-2');
    expect(cfg.mqtt.clientId).toBe('facility-gateway-gw-2');
  });

  it('leaves a configured client id alone', async () => {
    const { mkdtempSync, writeFileSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const file = join(mkdtempSync(join(tmpdir(), 'fgw-cid-')), 'gw.yaml');
    writeFileSync(file, 'cluster:\n  instanceId: gw-3\nmqtt:\n  clientId: plant-gateway\n');
    expect(loadConfig(file, {}).mqtt.clientId).toBe('plant-gateway');
  });
});
