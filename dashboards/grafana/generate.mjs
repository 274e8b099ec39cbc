// Writes the Grafana dashboards of dashboards/grafana/dashboards/ from the short descriptions
// below, so that six dashboards share one layout, one data source and one way of filtering by
// site and device. Run `node dashboards/grafana/generate.mjs` after changing them and commit the
// JSON: Grafana provisions the JSON files, not this script. Queries are InfluxQL (see README.md
// beside this file for why), and test/integration/grafana-dashboards.test.ts runs every one of
// them against a real InfluxDB.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The uid of the provisioned data source (provisioning/datasources/influxdb.yaml). */
export const DATASOURCE_UID = 'facility-influxdb';
const DS = { type: 'influxdb', uid: DATASOURCE_UID };

/** Series filter shared by every query of a dashboard with site/device variables. */
const FILTER = `"site" =~ /^$site$/ AND "device" =~ /^$device$/ AND $timeFilter`;

/**
 * Template variables `site` and `device` read from one measurement; device follows the sites
 * chosen. "All" is the regex `.*`, which InfluxQL matches without listing every value.
 */
function siteDeviceVariables(measurement) {
  const variable = (name, label, query) => ({
    name,
    label,
    type: 'query',
    datasource: DS,
    query,
    definition: query,
    refresh: 2,
    multi: true,
    includeAll: true,
    allValue: '.*',
    current: { selected: true, text: ['All'], value: ['$__all'] },
    sort: 1,
    hide: 0,
  });
  return [
    variable('site', 'Site', `SHOW TAG VALUES FROM "${measurement}" WITH KEY = "site"`),
    variable(
      'device',
      'Device',
      `SHOW TAG VALUES FROM "${measurement}" WITH KEY = "device" WHERE "site" =~ /^$site$/`,
    ),
  ];
}

/** Threshold steps: a base colour, then [value, colour] pairs in ascending order. */
function steps(base, ...rest) {
  return {
    mode: 'absolute',
    steps: [{ color: base, value: null }, ...rest.map(([value, color]) => ({ color, value }))],
  };
}

/**
 * A time series of one or more fields per device: mean over the panel interval (`sum` for
 * consumption), one line per device.
 */
function series(title, measurement, fields, opts = {}) {
  const agg = opts.agg ?? 'mean';
  const select = fields.map((f) => `${agg}("${f}") AS "${f}"`).join(', ');
  return {
    type: 'timeseries',
    title,
    description: opts.description,
    width: opts.width ?? 12,
    height: 8,
    fields,
    measurement,
    targets: [
      {
        query: `SELECT ${select} FROM "${measurement}" WHERE ${FILTER} GROUP BY time($__interval), "device" fill(none)`,
        alias: fields.length > 1 ? '$tag_device $col' : '$tag_device',
      },
    ],
    fieldConfig: {
      defaults: {
        unit: opts.unit,
        min: opts.min,
        max: opts.max,
        decimals: opts.decimals,
        thresholds: opts.thresholds ?? steps('green'),
        color: { mode: 'palette-classic' },
        custom: {
          drawStyle: opts.bars ? 'bars' : 'line',
          fillOpacity: opts.bars ? 60 : 10,
          showPoints: 'never',
          spanNulls: true,
          thresholdsStyle: { mode: opts.thresholds ? 'line+area' : 'off' },
        },
      },
      overrides: [],
    },
    options: {
      legend: { displayMode: 'table', placement: 'bottom', calcs: ['lastNotNull', 'min', 'max'] },
      tooltip: { mode: 'multi', sort: 'none' },
    },
  };
}

/**
 * How many values per device were not good (a failed sensor), from the `<metric>_bad` fields the
 * gateway writes them to (ADR 0070): every other panel reads the metrics' own fields, which hold
 * good values only, so a failed sensor shows as a gap there and as bars here.
 */
function notGood(measurement, metrics, opts = {}) {
  return {
    ...series('Values not good (sensor faults)', measurement, metrics, { ...opts, bars: true, min: 0 }),
    description:
      'Values the device or PLC marked bad or uncertain, per metric: left out of every other panel, counted here.',
    targets: [
      {
        query: `SELECT ${metrics.map((m) => `count("${m}_bad") AS "${m}"`).join(', ')} FROM "${measurement}" WHERE ${FILTER} GROUP BY time($__interval), "device" fill(none)`,
        alias: '$tag_device $col',
      },
    ],
  };
}

/** The latest value of each field per device, as a table (booleans and indexes). */
function latest(title, measurement, fields, opts = {}) {
  const select = fields.map((f) => `last("${f}") AS "${f}"`).join(', ');
  return {
    type: 'table',
    title,
    description: opts.description,
    width: opts.width ?? 12,
    height: opts.height ?? 8,
    fields,
    measurement,
    targets: [
      {
        query: `SELECT ${select} FROM "${measurement}" WHERE ${FILTER} GROUP BY "site", "device"`,
        resultFormat: 'table',
      },
    ],
    fieldConfig: {
      defaults: { unit: opts.unit, thresholds: opts.thresholds ?? steps('green') },
      overrides: [],
    },
    options: { showHeader: true, cellHeight: 'sm', footer: { show: false, reducer: ['sum'] } },
  };
}

/** A single number (count, mean) over the chosen time range. */
function stat(title, measurement, expr, where, field, opts = {}) {
  return {
    type: 'stat',
    title,
    description: opts.description,
    width: opts.width ?? 6,
    height: 4,
    fields: [field],
    measurement,
    targets: [
      {
        query: `SELECT ${expr} FROM "${measurement}" WHERE ${where ? `${where} AND ` : ''}${FILTER}`,
      },
    ],
    fieldConfig: {
      defaults: {
        unit: opts.unit,
        decimals: opts.decimals,
        thresholds: opts.thresholds ?? steps('green'),
        color: { mode: 'thresholds' },
      },
      overrides: [],
    },
    options: {
      reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false },
      colorMode: 'value',
      graphMode: 'none',
      textMode: 'auto',
      justifyMode: 'auto',
      orientation: 'auto',
    },
  };
}

/** Counts over time split by a tag (bars), e.g. alarms raised per severity. */
function countsBy(title, measurement, field, where, tag, opts = {}) {
  return {
    ...series(title, measurement, [field], { ...opts, bars: true }),
    targets: [
      {
        query: `SELECT count("${field}") AS "count" FROM "${measurement}" WHERE ${where ? `${where} AND ` : ''}${FILTER} GROUP BY time($__interval), "${tag}" fill(none)`,
        alias: `$tag_${tag}`,
      },
    ],
  };
}

/** A table of the newest events with their tags and fields. */
function eventLog(title, measurement, columns, opts = {}) {
  return {
    type: 'table',
    title,
    width: 24,
    height: opts.height ?? 10,
    fields: columns,
    measurement,
    targets: [
      {
        query: `SELECT ${columns.map((c) => `"${c}"`).join(', ')} FROM "${measurement}" WHERE ${FILTER} ORDER BY time DESC LIMIT 500`,
        resultFormat: 'table',
      },
    ],
    fieldConfig: { defaults: { thresholds: steps('green') }, overrides: [] },
    options: { showHeader: true, cellHeight: 'sm', footer: { show: false, reducer: ['sum'] } },
  };
}

/** Lays the panels out left to right in rows of 24 columns and numbers them. */
function dashboard(uid, title, description, measurement, panels, extraTags = []) {
  let x = 0;
  let y = 0;
  let rowHeight = 0;
  const laid = panels.map((p, i) => {
    if (x + p.width > 24) {
      x = 0;
      y += rowHeight;
      rowHeight = 0;
    }
    const { width, height, fields: _fields, measurement: _m, targets, ...rest } = p;
    const panel = {
      id: i + 1,
      gridPos: { h: height, w: width, x, y },
      datasource: DS,
      ...rest,
      targets: targets.map((t, j) => ({
        refId: String.fromCharCode(65 + j),
        datasource: DS,
        rawQuery: true,
        resultFormat: t.resultFormat ?? 'time_series',
        query: t.query,
        ...(t.alias ? { alias: t.alias } : {}),
      })),
    };
    if (panel.description === undefined) delete panel.description;
    x += width;
    rowHeight = Math.max(rowHeight, height);
    return panel;
  });
  return {
    uid,
    title,
    description,
    tags: ['facility', ...extraTags],
    timezone: 'browser',
    editable: true,
    graphTooltip: 1,
    refresh: '30s',
    schemaVersion: 39,
    version: 1,
    time: { from: 'now-24h', to: 'now' },
    timepicker: {},
    annotations: { list: [] },
    links: [{ type: 'dashboards', tags: ['facility'], asDropdown: true, title: 'Facility dashboards' }],
    templating: { list: siteDeviceVariables(measurement) },
    panels: laid,
  };
}

const gas = dashboard(
  'facility-gas-meter',
  'Gas meters',
  'Gas meters (measurement gas_meter): consumption, flow, supply pressure, battery, prepaid balance',
  'gas_meter',
  [
    series('Consumption', 'gas_meter', ['consumption_m3'], { agg: 'sum', unit: 'm3', bars: true, min: 0 }),
    series('Flow', 'gas_meter', ['flow_m3h'], { unit: 'm3/h', min: 0 }),
    series('Supply pressure (1.5–3.0 kPa)', 'gas_meter', ['pressure_kpa'], {
      unit: 'kPa',
      thresholds: steps('red', [1.5, 'green'], [3.0, 'red']),
    }),
    series('Methane (25 / 50 % LEL)', 'gas_meter', ['methane_lel_pct'], {
      unit: 'percent',
      min: 0,
      thresholds: steps('green', [25, 'orange'], [50, 'red']),
    }),
    series('Battery', 'gas_meter', ['battery_pct'], {
      unit: 'percent',
      min: 0,
      max: 100,
      thresholds: steps('red', [20, 'green']),
    }),
    series('Prepaid balance', 'gas_meter', ['balance_m3'], { unit: 'm3' }),
    latest('Latest state', 'gas_meter', ['volume_m3', 'balance_m3', 'valve_open', 'tamper', 'battery_pct'], {
      width: 24,
    }),
    notGood('gas_meter', ['volume_m3', 'flow_m3h', 'pressure_kpa'], { width: 24 }),
  ],
  ['gas-meter'],
);

const water = dashboard(
  'facility-water-meter',
  'Water meters',
  'Water meters (measurement water_meter): consumption, flow, pressure, reverse flow, freeze risk',
  'water_meter',
  [
    series('Consumption', 'water_meter', ['consumption_m3'], { agg: 'sum', unit: 'm3', bars: true, min: 0 }),
    series('Flow', 'water_meter', ['flow_lph'], { unit: 'L/h' }),
    series('Pressure (100–450 kPa)', 'water_meter', ['pressure_kpa'], {
      unit: 'kPa',
      thresholds: steps('red', [100, 'green'], [450, 'red']),
    }),
    series('Meter temperature (freeze risk)', 'water_meter', ['temperature_c'], {
      unit: 'celsius',
      thresholds: steps('red', [0, 'orange'], [4, 'green']),
    }),
    series('Battery', 'water_meter', ['battery_pct'], {
      unit: 'percent',
      min: 0,
      max: 100,
      thresholds: steps('red', [20, 'green']),
    }),
    latest('Latest state', 'water_meter', ['volume_m3', 'reverse_flow', 'tamper', 'battery_pct']),
    notGood('water_meter', ['volume_m3', 'flow_lph', 'pressure_kpa', 'temperature_c'], { width: 24 }),
  ],
  ['water-meter'],
);

const chlorination = dashboard(
  'facility-chlorination',
  'Chlorination',
  'Tank chlorination (measurement chlorination): free chlorine against 0.05 / 0.3 mg/L (GB 5749 minimum at the tap and leaving treatment), 2 mg/L (default upper warning) and 4 mg/L (upper limit); pH, turbidity, level, dosing pump',
  'chlorination',
  [
    series('Free chlorine (0.05 / 0.3 / 2 / 4 mg/L)', 'chlorination', ['free_chlorine_mgl'], {
      unit: 'mg/L',
      min: 0,
      decimals: 2,
      width: 24,
      description:
        'Below 0.05 mg/L: no disinfection residual (critical). Below 0.3 mg/L: warning. Above 2 mg/L: warning (default rule). Above 4 mg/L: over the upper limit.',
      thresholds: steps('red', [0.05, 'orange'], [0.3, 'green'], [2, 'orange'], [4, 'red']),
    }),
    series('Total chlorine', 'chlorination', ['total_chlorine_mgl'], { unit: 'mg/L', min: 0, decimals: 2 }),
    series('pH (6.5–8.5)', 'chlorination', ['ph'], {
      thresholds: steps('red', [6.5, 'green'], [8.5, 'red']),
      decimals: 2,
    }),
    series('Turbidity (1 NTU)', 'chlorination', ['turbidity_ntu'], {
      unit: 'NTU',
      min: 0,
      thresholds: steps('green', [1, 'red']),
    }),
    series('Tank level (20 %)', 'chlorination', ['level_pct'], {
      unit: 'percent',
      min: 0,
      max: 100,
      thresholds: steps('orange', [20, 'green']),
    }),
    series('ORP and water temperature', 'chlorination', ['orp_mv', 'temperature_c']),
    latest('Dosing pump and latest values', 'chlorination', [
      'dosing_pump_on',
      'free_chlorine_mgl',
      'ph',
      'level_pct',
    ]),
    notGood('chlorination', ['free_chlorine_mgl', 'total_chlorine_mgl', 'ph', 'turbidity_ntu', 'level_pct']),
  ],
  ['chlorination'],
);

const envProbe = dashboard(
  'facility-env-probe',
  'Server rooms',
  'Server / machine room probes (measurement env_probe): inlet temperature against 18–27 °C and 15–32 °C, humidity 60 %, dew point 5.5–15 °C, smoke, water, door',
  'env_probe',
  [
    series('Inlet temperature (18–27 / 15–32 °C)', 'env_probe', ['temperature_c'], {
      unit: 'celsius',
      thresholds: steps('red', [15, 'orange'], [18, 'green'], [27, 'orange'], [32, 'red']),
    }),
    series('Relative humidity (60 %)', 'env_probe', ['humidity_pct'], {
      unit: 'humidity',
      min: 0,
      max: 100,
      thresholds: steps('green', [60, 'orange']),
    }),
    series('Dew point (5.5–15 °C)', 'env_probe', ['dew_point_c'], {
      unit: 'celsius',
      thresholds: steps('orange', [5.5, 'green'], [15, 'orange']),
    }),
    latest('Smoke, water, door', 'env_probe', ['smoke', 'water_leak', 'door_open', 'temperature_c']),
    notGood('env_probe', ['temperature_c', 'humidity_pct']),
  ],
  ['env-probe'],
);

const alarms = dashboard(
  'facility-alarms',
  'Alarms',
  'Alarm events (measurement alarm_event): raised, escalated, acknowledged and cleared alarms per severity and rule',
  'alarm_event',
  [
    stat('Alarms raised', 'alarm_event', 'count("alarm_id")', `"event" = 'raise'`, 'alarm_id'),
    stat(
      'Critical raised',
      'alarm_event',
      'count("alarm_id")',
      `"event" = 'raise' AND "severity" = 'critical'`,
      'alarm_id',
      {
        thresholds: steps('green', [1, 'red']),
      },
    ),
    stat('Acknowledged', 'alarm_event', 'count("alarm_id")', `"event" = 'ack'`, 'alarm_id'),
    stat('Cleared', 'alarm_event', 'count("alarm_id")', `"event" = 'clear'`, 'alarm_id'),
    countsBy('Raised per severity', 'alarm_event', 'alarm_id', `"event" = 'raise'`, 'severity'),
    countsBy('Raised per rule', 'alarm_event', 'alarm_id', `"event" = 'raise'`, 'rule'),
    eventLog('Alarm events', 'alarm_event', [
      'site',
      'device',
      'rule',
      'severity',
      'event',
      'state',
      'value',
      'message',
      'user',
      'alarm_id',
      'incident_id',
      'shelved',
    ]),
  ],
  ['alarms'],
);

const workOrders = dashboard(
  'facility-work-orders',
  'Work orders',
  'Work-order KPIs (measurements ticket_event and alarm_event): tickets opened and closed, response and resolution times against 30 min / 4 h, escalations, repeat faults',
  'ticket_event',
  [
    stat('Tickets opened', 'ticket_event', 'count("ticket_id")', `"action" = 'create'`, 'ticket_id'),
    stat('Tickets closed', 'ticket_event', 'count("ticket_id")', `"action" = 'close'`, 'ticket_id'),
    stat(
      'Repeat faults',
      'ticket_event',
      'count("ticket_id")',
      `"action" = 'create' AND "repeat" = true`,
      'ticket_id',
      {
        thresholds: steps('green', [1, 'orange']),
        description: 'The same fault on the same asset within 6 months of a resolved ticket',
      },
    ),
    stat('Highest escalation level', 'ticket_event', 'max("escalation_level")', '', 'escalation_level', {
      thresholds: steps('green', [1, 'orange'], [2, 'red']),
    }),
    stat('Mean response time', 'ticket_event', 'mean("response_min")', '', 'response_min', {
      unit: 'm',
      decimals: 1,
      thresholds: steps('green', [30, 'red']),
    }),
    stat(
      'Responses later than 30 min',
      'ticket_event',
      'count("response_min")',
      `"response_min" > 30`,
      'response_min',
      {
        thresholds: steps('green', [1, 'red']),
      },
    ),
    stat('Mean resolution time', 'ticket_event', 'mean("resolve_min")', '', 'resolve_min', {
      unit: 'm',
      decimals: 0,
      thresholds: steps('green', [240, 'red']),
    }),
    stat(
      'Resolutions later than 4 h',
      'ticket_event',
      'count("resolve_min")',
      `"resolve_min" > 240`,
      'resolve_min',
      {
        thresholds: steps('green', [1, 'red']),
      },
    ),
    {
      ...series(
        'Response and resolution time per priority',
        'ticket_event',
        ['response_min', 'resolve_min'],
        {
          unit: 'm',
          bars: true,
        },
      ),
      targets: [
        {
          query: `SELECT mean("response_min") AS "response_min", mean("resolve_min") AS "resolve_min" FROM "ticket_event" WHERE ${FILTER} GROUP BY time($__interval), "priority" fill(none)`,
          alias: '$tag_priority $col',
        },
      ],
    },
    countsBy('Ticket events per status', 'ticket_event', 'ticket_id', '', 'status'),
    countsBy('Alarms raised per severity', 'alarm_event', 'alarm_id', `"event" = 'raise'`, 'severity'),
    countsBy('Escalations per class', 'ticket_event', 'ticket_id', `"escalation_level" > 0`, 'class'),
    eventLog('Ticket events', 'ticket_event', [
      'site',
      'device',
      'priority',
      'class',
      'event',
      'status',
      'action',
      'ticket_id',
      'escalation_level',
      'response_min',
      'resolve_min',
      'repeat',
    ]),
  ],
  ['work-orders'],
);

export const DASHBOARDS = {
  'gas-meter.json': gas,
  'water-meter.json': water,
  'chlorination.json': chlorination,
  'env-probe.json': envProbe,
  'alarms.json': alarms,
  'work-orders.json': workOrders,
};

/** The file text of a dashboard, as committed. */
export function render(dash) {
  return JSON.stringify(dash, null, 2) + '\n';
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const out = join(dirname(fileURLToPath(import.meta.url)), 'dashboards');
  mkdirSync(out, { recursive: true });
  for (const [file, dash] of Object.entries(DASHBOARDS)) writeFileSync(join(out, file), render(dash));
  process.stdout.write(`wrote ${Object.keys(DASHBOARDS).length} dashboards to ${out}\n`);
}
