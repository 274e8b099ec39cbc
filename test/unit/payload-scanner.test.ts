import { describe, expect, it } from 'vitest';
import { configSchema } from '../../gateway/src/config/schema.js';
import { newDeviceRefs } from '../../gateway/src/core/types.js';
import { BUILTIN_KINDS } from '../../gateway/src/ingest/catalogue.js';
import { PayloadValidator, type TopicInfo } from '../../gateway/src/ingest/decode.js';
import { LineBuilder } from '../../gateway/src/ingest/line-builder.js';
import { Rejection } from '../../gateway/src/ingest/reasons.js';
import { PayloadScanner } from '../../gateway/src/ingest/scan.js';
import { createRng } from '../../simulators/rng.js';
import { KINDS, payload } from '../../bench/payloads.js';

// The byte scanner must give exactly what JSON.parse + PayloadValidator give (reading, field
// order, -0, value count, line bytes) whenever it takes a payload, and leave everything else,
// valid or not, to them.

const cfg = configSchema.parse({}).ingest;
const NOW = 1767225600000;

function info(kind: string): TopicInfo {
  const def = BUILTIN_KINDS[kind]!;
  return {
    site: 's1',
    kind,
    device: 'd1',
    key: 's1/d1',
    def,
    prefix: Buffer.from(`${def.measurement},device=d1,site=s1 `),
    refs: newDeviceRefs(),
  };
}

const scanner = new PayloadScanner(cfg);
const validator = new PayloadValidator(cfg);
const fastLine = new LineBuilder();
const slowLine = new LineBuilder();

/** 'fast': the scanner took it and agrees with the general path; 'general': it left it to it. */
function compare(kind: string, text: string, now = NOW): 'fast' | 'general' {
  const t = info(kind);
  const fast = scanner.decode(t, Buffer.from(text), now, fastLine);
  if (fast === null) return 'general';
  const slow = validator.validate(t, JSON.parse(text) as unknown, now, slowLine);
  expect(slow, text).not.toBeInstanceOf(Rejection);
  expect(fast, text).toEqual(slow);
  expect(Object.keys(fast.fields), text).toEqual(Object.keys((slow as typeof fast).fields));
  expect(scanner.count, text).toBe(validator.count);
  expect(fastLine.buf.toString('utf8', 0, fastLine.at), text).toBe(
    slowLine.buf.toString('utf8', 0, slowLine.at),
  );
  return 'fast';
}

describe('payload scanner', () => {
  it('takes the benchmarks’ payloads of every kind and agrees with the general path', () => {
    for (const kind of KINDS) {
      for (let d = 0; d < 50; d++) expect(compare(kind, payload(kind, d, d * 3, NOW - 5000))).toBe('fast');
    }
  });

  it.each([
    ['flat, no ts', 'env-probe', '{"temperature_c":21.5,"humidity_pct":40,"smoke":false}'],
    ['nested', 'env-probe', '{"ts":1767225599000,"values":{"temperature_c":-3.25,"door_open":true}}'],
    ['ts after values', 'env-probe', '{"values":{"temperature_c":1},"ts":1767225599000}'],
    ['RFC 3339 ts', 'chlorination', '{"ts":"2026-01-01T00:00:00Z","ph":7.2}'],
    ['RFC 3339 ts with offset', 'chlorination', '{"ts":"2025-12-31T23:59:59.5+00:00","ph":7.2}'],
    [
      'whitespace everywhere',
      'chlorination',
      ' {\n\t"ts" : 1767225599000 ,\r\n "ph" : 7.20 , "orp_mv" :650 } \n',
    ],
    ['trailing zeros', 'gas-meter', '{"volume_m3":1000.120,"flow_m3h":0.500,"pressure_kpa":2.000}'],
    ['negative zero', 'gas-meter', '{"pressure_kpa":-0,"balance_m3":-0.000}'],
    ['negative values', 'gas-meter', '{"pressure_kpa":-12.5,"balance_m3":-1000000}'],
    ['zero and small', 'chlorination', '{"turbidity_ntu":0,"free_chlorine_mgl":0.000001}'],
    ['fifteen digits', 'gas-meter', '{"volume_m3":123456.789012345,"balance_m3":999999999}'],
    ['0 and 1 as booleans', 'env-probe', '{"smoke":0,"water_leak":1,"door_open":false}'],
    ['ts with a zero fraction', 'chlorination', '{"ts":1767225599000.0,"ph":7}'],
  ])('takes %s', (_, kind, text) => {
    expect(compare(kind, text)).toBe('fast');
  });

  it.each([
    ['an escape in a key', 'chlorination', '{"p\\u0068":7.2}'],
    ['an exponent', 'chlorination', '{"ph":7e0}'],
    ['sixteen digits', 'gas-meter', '{"volume_m3":1234567.890123456}'],
    ['a value below 1e-6 (written with an exponent)', 'chlorination', '{"turbidity_ntu":0.0000001}'],
    ['a duplicate key', 'chlorination', '{"ph":7.2,"ph":7.3}'],
    ['a duplicate ts', 'chlorination', '{"ts":1767225599000,"ts":1767225599001,"ph":7}'],
    ['an extra metric', 'chlorination', '{"ph":7.2,"rack_fan_rpm":1200}'],
    ['a derived field', 'water-meter', '{"volume_m3":1,"consumption_m3":2}'],
    ['a value out of range', 'chlorination', '{"ph":15}'],
    ['a string value', 'chlorination', '{"ph":"7"}'],
    ['null', 'chlorination', '{"ph":null}'],
    ['a boolean for a number', 'chlorination', '{"ph":true}'],
    ['1.0 for a boolean', 'env-probe', '{"smoke":1.0}'],
    ['-0 for a boolean', 'env-probe', '{"smoke":-0}'],
    ['2 for a boolean', 'env-probe', '{"smoke":2}'],
    ['a ts in the future', 'chlorination', `{"ts":${NOW + 3_600_000},"ph":7}`],
    ['a ts too old', 'chlorination', '{"ts":1000,"ph":7}'],
    ['a fractional ts', 'chlorination', '{"ts":1767225599000.5,"ph":7}'],
    ['a null ts', 'chlorination', '{"ts":null,"ph":7}'],
    ['a bad ts string', 'chlorination', '{"ts":"yesterday","ph":7}'],
    ['values beside a metric', 'chlorination', '{"ph":7,"values":{"orp_mv":1}}'],
    ['a metric beside values', 'chlorination', '{"values":{"orp_mv":1},"ph":7}'],
    ['empty values', 'chlorination', '{"values":{}}'],
    ['an empty object', 'chlorination', '{}'],
    ['trailing bytes', 'chlorination', '{"ph":7}x'],
    ['a leading zero', 'chlorination', '{"ph":07}'],
    ['a dangling dot', 'chlorination', '{"ph":7.}'],
    ['an array', 'chlorination', '[1]'],
    ['a truncated object', 'chlorination', '{"ph":7'],
    ['a truncated key', 'chlorination', '{"ph'],
    ['a byte order mark', 'chlorination', '\ufeff{"ph":7}'],
  ])('leaves %s to the general path', (_, kind, text) => {
    expect(compare(kind, text)).toBe('general');
  });

  it('agrees with the general path on 20,000 generated payloads, odd numbers included', () => {
    const rng = createRng(20261128);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rng.next() * xs.length)]!;
    const digits = (n: number, first = '0123456789'): string => {
      let s = n > 0 ? pick(first.split('')) : '';
      for (let k = 1; k < n; k++) s += pick('0123456789'.split(''));
      return s;
    };
    const number = (): string => {
      const width = rng.chance(0.9) ? 1 + Math.floor(rng.next() * 2) : 1 + Math.floor(rng.next() * 10);
      const int = rng.chance(0.3) ? '0' : digits(width, '123456789');
      let s = (rng.chance(0.1) ? '-' : '') + int;
      if (rng.chance(0.7)) s += '.' + digits(1 + Math.floor(rng.next() * 9));
      if (rng.chance(0.05)) s += 'e' + pick(['-', '', '+']) + digits(1, '123');
      return s;
    };
    const value = (type: string): string =>
      type === 'boolean'
        ? pick(['true', 'false', 'true', 'false', '0', '1', '2', '1.0', '"x"'])
        : rng.chance(0.95)
          ? number()
          : pick(['true', 'null', '"1"', '[]', '{}']);
    let fast = 0;
    for (let k = 0; k < 20_000; k++) {
      const kind = pick(KINDS);
      const metrics = Object.entries(BUILTIN_KINDS[kind]!.metrics);
      const members: string[] = [];
      for (const [name, def] of metrics) if (rng.chance(0.4)) members.push(`"${name}":${value(def.type)}`);
      if (rng.chance(0.02) && members.length) members.push(members[0]!);
      const ts = rng.chance(0.8) ? `"ts":${NOW - Math.floor(rng.next() * 1e6)}` : null;
      const body =
        rng.chance(0.3) && members.length
          ? `{${ts ? ts + ',' : ''}"values":{${members.join(',')}}}`
          : `{${[ts, ...members].filter(Boolean).join(rng.chance(0.5) ? ',' : ' , ')}}`;
      if (compare(kind, body) === 'fast') fast++;
    }
    // Most are taken: the comparison covers the scanner, not only its refusals.
    expect(fast).toBeGreaterThan(5_000);
  });
});
