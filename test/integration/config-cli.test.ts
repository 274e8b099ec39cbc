import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runGatewayCli } from '../fixtures/gateway.js';

const dir = mkdtempSync(join(tmpdir(), 'fgw-badcfg-'));
function file(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

/** Each bad configuration: the gateway exits 2 and names the key path of each problem. */
const CASES: Array<{
  name: string;
  args?: string[];
  yaml?: string;
  env?: Record<string, string>;
  expect: RegExp[];
}> = [
  { name: 'unknown top-level key', yaml: 'mqt:\n  url: mqtt://x:1883\n', expect: [/^\s+mqt: unknown key$/m] },
  { name: 'unknown nested key', yaml: 'influx:\n  buckett: x\n', expect: [/influx\.buckett: unknown key/] },
  { name: 'wrong type', yaml: 'http:\n  port: "eighty"\n', expect: [/http\.port: /] },
  { name: 'port out of range', yaml: 'http:\n  port: 70000\n', expect: [/http\.port: /] },
  { name: 'bad enum', yaml: 'influx:\n  api: v3\n', expect: [/influx\.api: /] },
  { name: 'bad broker URL', yaml: 'mqtt:\n  url: http://broker\n', expect: [/mqtt\.url: must be mqtt:\/\//] },
  {
    name: 'bad device id',
    yaml: 'devices:\n  - { id: "tank 1", site: s1, kind: chlorination }\n',
    expect: [/devices\.0\.id: must match/],
  },
  {
    name: 'duplicate device',
    yaml: 'devices:\n  - { id: t1, site: s1, kind: chlorination }\n  - { id: t1, site: s1, kind: chlorination }\n',
    expect: [/devices\.1\.id: duplicate device s1\/t1/],
  },
  {
    name: 'device of an undeclared kind',
    yaml: 'devices:\n  - { id: t1, site: s1, kind: toaster }\n',
    expect: [/devices\.0\.kind: unknown kind "toaster"/],
  },
  {
    name: 'several problems at once',
    yaml: 'http:\n  port: -1\ningest:\n  maxPayloadBytes: 1\n',
    expect: [/http\.port: /, /ingest\.maxPayloadBytes: /],
  },
  { name: 'not YAML', yaml: 'http: [port: 1\n', expect: [/\(file\): not valid YAML/] },
  { name: 'not a mapping', yaml: '- a\n- b\n', expect: [/\(root\): must be a mapping/] },
  {
    name: 'missing file',
    args: ['--config', '/nonexistent/gateway.yaml'],
    expect: [/\(file\): cannot read/],
  },
  {
    name: 'environment variable not a number',
    env: { GATEWAY_HTTP_PORT: 'abc' },
    expect: [/http\.port \(from GATEWAY_HTTP_PORT\): must be an integer/],
  },
  {
    name: 'environment variable bad enum',
    env: { GATEWAY_INFLUX_API: 'v9' },
    expect: [/influx\.api: .*\(from GATEWAY_INFLUX_API\)/],
  },
  {
    name: 'reconnect bounds inverted',
    yaml: 'mqtt:\n  reconnect: { minMs: 5000, maxMs: 100 }\n',
    expect: [/mqtt\.reconnect\.minMs: must not exceed/],
  },
  {
    name: 'shared subscription without cluster mode',
    yaml: "mqtt:\n  topics: ['facility/+/+/+/telemetry', '$share/gw/facility/+/+/+/telemetry']\n",
    expect: [/mqtt\.topics\.1: a shared subscription hands one device's readings to several instances/],
  },
  {
    name: 'cluster mode without an instance id or an external broker',
    env: { GATEWAY_POSTGRES_URL: 'postgres://gw@127.0.0.1:5432/gw' },
    expect: [
      /cluster\.instanceId: cluster mode \(storage\.postgres\) needs a unique name per instance/,
      /mqtt\.url: cluster mode \(storage\.postgres\) needs an external broker/,
    ],
  },
  {
    name: 'shared subscription in cluster mode',
    yaml: "mqtt:\n  url: mqtt://127.0.0.1:1883\n  topics: ['$share/gw/facility/+/+/+/telemetry']\n",
    env: { GATEWAY_POSTGRES_URL: 'postgres://gw@127.0.0.1:5432/gw', GATEWAY_INSTANCE_ID: 'gw-1' },
    expect: [/mqtt\.topics\.0: cluster mode hands each device to one member itself/],
  },
  {
    name: 'instance id that is not an id',
    env: { GATEWAY_INSTANCE_ID: 'gw 1' },
    expect: [/cluster\.instanceId: must match .*\(from GATEWAY_INSTANCE_ID\)/],
  },
  { name: 'unknown command-line option', args: ['--confg', 'x'], expect: [/Unknown option '--confg'/] },
];

describe.concurrent('bad configuration stops start-up with exit code 2 and the key path', () => {
  for (const c of CASES) {
    it(c.name, async () => {
      const args =
        c.args ??
        (c.yaml !== undefined
          ? ['--config', file(`${c.name.replace(/\W+/g, '-')}.yaml`, c.yaml), '--check-config']
          : ['--check-config']);
      const { code, out } = await runGatewayCli(args, c.env);
      expect(code, out).toBe(2);
      for (const re of c.expect) expect(out).toMatch(re);
    });
  }

  it('--check-config accepts a valid file and exits 0', async () => {
    const p = file(
      'ok.yaml',
      'mqtt:\n  url: mqtt://127.0.0.1:1883\ninflux:\n  api: v1\n  db: facility\ndevices:\n  - { id: tank-1, site: plant, kind: chlorination, critical: true }\n',
    );
    const { code, out } = await runGatewayCli(['--config', p, '--check-config']);
    expect(code, out).toBe(0);
    expect(out).toContain('configuration ok');
  });
});
