import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { alarmEventLine } from '../../gateway/src/alarms/line-protocol.js';
import type { Alarm, AlarmEventType } from '../../gateway/src/alarms/types.js';
import { BUILTIN_KINDS } from '../../gateway/src/ingest/catalogue.js';
import { DASHBOARDS, render } from '../../dashboards/grafana/generate.mjs';
import { startInfluxDB, type InfluxDB, type InfluxSeries } from '../fixtures/influxdb.js';

/**
 * The provisioned Grafana dashboards, checked for real: every InfluxQL query (variables and
 * panels), with Grafana's macros and variables filled in as Grafana would, runs against a real
 * InfluxDB 1.6.7 holding a few points of every measurement the gateway writes, and must return a
 * value in every column. A field or measurement name that the gateway does not write returns no
 * series or an empty column, and fails here.
 */

const ROOT = join(import.meta.dirname, '../..');
const GRAFANA = join(ROOT, 'dashboards/grafana');
const DB = 'facility';
const SITE = 'plant-1';

interface Target {
  refId: string;
  query: string;
  rawQuery?: boolean;
  resultFormat?: string;
  datasource?: { type: string; uid: string };
}
interface Panel {
  id: number;
  type: string;
  title: string;
  datasource?: { type: string; uid: string };
  targets?: Target[];
  fieldConfig?: { defaults?: { thresholds?: { steps: Array<{ value: number | null }> } } };
}
interface Variable {
  name: string;
  query: string;
  datasource?: { type: string; uid: string };
}
interface Dashboard {
  uid: string;
  title: string;
  panels: Panel[];
  templating: { list: Variable[] };
}

const files = readdirSync(join(GRAFANA, 'dashboards'))
  .filter((f) => f.endsWith('.json'))
  .sort();
const dashboards = files.map((file) => ({
  file,
  text: readFileSync(join(GRAFANA, 'dashboards', file), 'utf8'),
}));
const provisioned = parseYaml(
  readFileSync(join(GRAFANA, 'provisioning/datasources/influxdb.yaml'), 'utf8'),
) as {
  datasources: Array<{ uid: string; type: string; jsonData: { dbName: string } }>;
};
const dsUid = provisioned.datasources[0]!.uid;

/** Grafana's macros and this test's variable values, as Grafana formats them for InfluxQL regexes. */
function substitute(q: string, vars: { site: string; device: string }): string {
  const out = q
    .replaceAll('$timeFilter', 'time > now() - 2h')
    .replaceAll('$__interval', '1m')
    .replaceAll('$site', vars.site)
    .replaceAll('$device', vars.device);
  // Anything still looking like a variable would reach InfluxDB unreplaced from Grafana too.
  const left = out.replace(/\$\//g, '').match(/\$[A-Za-z_]\w*/);
  if (left) throw new Error(`unknown Grafana variable ${left[0]} in ${q}`);
  return out;
}

/** Columns other than time that have no value in any row. */
function emptyColumns(series: InfluxSeries[]): string[] {
  const empty: string[] = [];
  const columns = new Set(series.flatMap((s) => s.columns));
  for (const c of columns) {
    if (c === 'time') continue;
    const has = series.some((s) => {
      const i = s.columns.indexOf(c);
      return i >= 0 && s.values.some((row) => row[i] !== null && row[i] !== undefined);
    });
    if (!has) empty.push(c);
  }
  return empty;
}

function sampleValue(def: { type: 'number' | 'boolean'; min?: number; max?: number }, i: number): string {
  if (def.type === 'boolean') return i % 2 === 0 ? 'true' : 'false';
  const lo = Math.max(def.min ?? 0, 0);
  const hi = Math.min(def.max ?? 100, 100);
  return String(lo + ((hi - lo) * (i + 1)) / 10);
}

/** Points of every built-in kind, with derived fields, at two sites. */
function readingLines(now: number): string[] {
  const lines: string[] = [];
  for (const def of Object.values(BUILTIN_KINDS)) {
    for (const [site, device] of [
      [SITE, 'dev-a'],
      ['plant-2', 'dev-b'],
    ] as const) {
      for (let i = 0; i < 4; i++) {
        const fields = Object.entries(def.metrics).map(([name, m]) => `${name}=${sampleValue(m, i)}`);
        if (def.metrics.volume_m3) fields.push(`consumption_m3=${0.1 * (i + 1)}`);
        if (def.measurement === 'env_probe') fields.push(`dew_point_c=${8 + i}`);
        lines.push(
          `${def.measurement},device=${device},site=${site} ${fields.join(',')} ${now - i * 60_000}`,
        );
      }
    }
  }
  return lines;
}

/** A failed sensor on every kind: each value not good, as the gateway writes it (ADR 0070). */
const FAILED = 'dev-f';
function badLines(now: number): string[] {
  const lines: string[] = [];
  for (const def of Object.values(BUILTIN_KINDS)) {
    for (let i = 0; i < 3; i++) {
      const fields = Object.entries(def.metrics).map(
        ([name, m]) => `${name}_bad=${m.type === 'boolean' ? 'false' : '0'},${name}_quality="bad"`,
      );
      lines.push(`${def.measurement},device=${FAILED},site=${SITE} ${fields.join(',')} ${now - i * 60_000}`);
    }
  }
  return lines;
}

/** alarm_event lines as the alarm service writes them. */
function alarmLines(now: number): string[] {
  const alarm: Alarm = {
    id: 'al-1',
    site: SITE,
    device: 'dev-a',
    kind: 'chlorination',
    rule: 'chlorine-low',
    class: 'safety',
    severity: 'critical',
    state: 'active-unacknowledged',
    value: 0.02,
    message: 'free chlorine 0.02 mg/L below 0.05',
    raisedAt: now - 600_000,
    clearedAt: null,
    acknowledgedAt: null,
    acknowledgedBy: null,
    ackNote: null,
    incidentId: 'inc-1',
    shelved: false,
    critical: true,
    updatedAt: now,
  };
  const events: Array<[AlarmEventType, number]> = [
    ['raise', 600_000],
    ['ack', 400_000],
    ['escalate', 300_000],
    ['clear', 100_000],
  ];
  return events.map(([type, ago]) =>
    alarmEventLine({
      type,
      ts: now - ago,
      alarm: { ...alarm },
      user: 'engineer-1',
      note: `${type} note`,
    }).trim(),
  );
}

/** ticket_event lines in the shape the work-order service writes. */
function ticketLines(now: number): string[] {
  const t = (
    ago: number,
    tags: { priority: string; class: string; event: string; status: string },
    fields: string,
  ): string =>
    `ticket_event,class=${tags.class},device=dev-a,event=${tags.event},priority=${tags.priority},site=${SITE},status=${tags.status} ${fields} ${now - ago}`;
  return [
    t(
      900_000,
      { priority: 'critical', class: 'safety', event: 'created', status: 'open' },
      'ticket_id="t-1",action="create",escalation_level=0,repeat=false',
    ),
    t(
      800_000,
      { priority: 'critical', class: 'safety', event: 'responded', status: 'acknowledged' },
      'ticket_id="t-1",action="acknowledge",escalation_level=0,response_min=45,repeat=false',
    ),
    t(
      700_000,
      { priority: 'critical', class: 'safety', event: 'escalated', status: 'acknowledged' },
      'ticket_id="t-1",action="escalate",escalation_level=1,repeat=false',
    ),
    t(
      500_000,
      { priority: 'critical', class: 'safety', event: 'resolved', status: 'resolved' },
      'ticket_id="t-1",action="resolve",escalation_level=1,resolve_min=300,repeat=false',
    ),
    t(
      400_000,
      { priority: 'critical', class: 'safety', event: 'closed', status: 'closed' },
      'ticket_id="t-1",action="close",escalation_level=1,repeat=false',
    ),
    t(
      300_000,
      { priority: 'medium', class: 'routine', event: 'created', status: 'open' },
      'ticket_id="t-2",action="create",escalation_level=0,response_min=10,repeat=true',
    ),
  ];
}

describe('Grafana dashboards', () => {
  let influx: InfluxDB;

  beforeAll(async () => {
    influx = await startInfluxDB();
    await influx.createDb(DB);
    const now = Date.now();
    const body =
      [...readingLines(now), ...badLines(now), ...alarmLines(now), ...ticketLines(now)].join('\n') + '\n';
    const res = await fetch(`${influx.url}/write?db=${DB}&precision=ms`, { method: 'POST', body });
    expect(res.status, await res.text()).toBe(204);
  });

  afterAll(async () => {
    await influx?.close();
  });

  it('has one dashboard per device kind, alarms and work orders', () => {
    expect(files).toEqual([
      'alarms.json',
      'chlorination.json',
      'env-probe.json',
      'gas-meter.json',
      'water-meter.json',
      'work-orders.json',
    ]);
  });

  it('provisions an InfluxDB data source whose database is the gateway bucket', () => {
    expect(provisioned.datasources).toHaveLength(1);
    expect(provisioned.datasources[0]!.type).toBe('influxdb');
    expect(provisioned.datasources[0]!.jsonData.dbName).toBe('${GRAFANA_INFLUX_DB}');
  });

  it('commits the JSON the generator writes', () => {
    for (const { file, text } of dashboards) {
      const generated = (DASHBOARDS as Record<string, object>)[file];
      expect(generated, file).toBeDefined();
      expect(text, `${file} differs from generate.mjs: run node dashboards/grafana/generate.mjs`).toBe(
        render(generated!),
      );
    }
  });

  it('parses, with unique uids and panel ids, site/device variables and the provisioned data source', () => {
    const uids = new Set<string>();
    for (const { file, text } of dashboards) {
      const d = JSON.parse(text) as Dashboard;
      expect(uids.has(d.uid), `${file}: uid ${d.uid} used twice`).toBe(false);
      uids.add(d.uid);
      const ids = d.panels.map((p) => p.id);
      expect(new Set(ids).size, `${file}: duplicate panel ids ${ids.join(',')}`).toBe(ids.length);
      expect(d.templating.list.map((v) => v.name)).toEqual(['site', 'device']);
      for (const v of d.templating.list) expect(v.datasource?.uid, `${file} $${v.name}`).toBe(dsUid);
      expect(d.panels.length).toBeGreaterThan(2);
      for (const p of d.panels) {
        expect(p.datasource?.uid, `${file} panel ${p.id}`).toBe(dsUid);
        expect(p.targets?.length, `${file} panel ${p.id} has no query`).toBeGreaterThan(0);
        for (const t of p.targets!) {
          expect(t.datasource?.uid, `${file} panel ${p.id} ${t.refId}`).toBe(dsUid);
          expect(t.rawQuery).toBe(true);
        }
      }
    }
  });

  it('draws the chlorine limits 0.05, 0.3 and 4 mg/L', () => {
    const d = JSON.parse(dashboards.find((x) => x.file === 'chlorination.json')!.text) as Dashboard;
    const panel = d.panels.find((p) => p.targets?.some((t) => t.query.includes('"free_chlorine_mgl"')));
    const values = panel?.fieldConfig?.defaults?.thresholds?.steps.map((s) => s.value) ?? [];
    expect(values).toEqual(expect.arrayContaining([0.05, 0.3, 4]));
  });

  for (const { file, text } of dashboards) {
    it(`${file}: every variable query finds values in InfluxDB`, async () => {
      const d = JSON.parse(text) as Dashboard;
      for (const v of d.templating.list) {
        const q = substitute(v.query, { site: SITE, device: '.*' });
        const series = await influx.query(q, DB);
        const values = series.flatMap((s) => s.values.map((row) => row[s.columns.indexOf('value')]));
        expect(values.length, `$${v.name}: ${q}`).toBeGreaterThan(0);
        if (v.name === 'site') expect(values).toContain(SITE);
      }
    });

    it(`${file}: every panel query runs and returns data in every column`, async () => {
      const d = JSON.parse(text) as Dashboard;
      for (const p of d.panels) {
        for (const t of p.targets ?? []) {
          // Both a chosen site with all its devices, and "All" for both variables.
          for (const vars of [
            { site: SITE, device: '.*' },
            { site: '.*', device: '.*' },
          ]) {
            const q = substitute(t.query, vars);
            const series = await influx.query(q, DB);
            const where = `${file} panel ${p.id} "${p.title}" ${t.refId}: ${q}`;
            expect(series.length, `no data for ${where}`).toBeGreaterThan(0);
            expect(emptyColumns(series), `empty columns in ${where}`).toEqual([]);
          }
        }
      }
    });

    it(`${file}: a failed sensor's values appear only in the panel that counts them`, async () => {
      const d = JSON.parse(text) as Dashboard;
      for (const p of d.panels) {
        for (const t of p.targets ?? []) {
          const q = substitute(t.query, { site: SITE, device: FAILED });
          const series = await influx.query(q, DB);
          const where = `${file} panel ${p.id} "${p.title}" ${t.refId}: ${q}`;
          const values = series.flatMap((s) => s.values.flatMap((row) => row.slice(1)));
          if (p.title.startsWith('Values not good')) {
            // Three readings, every metric of the panel bad in each.
            const sum = (values as number[]).reduce((a, b) => a + b, 0);
            expect(sum, where).toBe(3 * (series[0]!.columns.length - 1));
          } else
            expect(
              values.filter((v) => v !== null && v !== undefined),
              where,
            ).toEqual([]);
        }
      }
    });
  }
});
