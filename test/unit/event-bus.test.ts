import { describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { EventBus } from '../../gateway/src/core/events.js';
import { Lifecycle } from '../../gateway/src/core/lifecycle.js';
import type { Component } from '../../gateway/src/core/types.js';
import type { Reading } from '../../gateway/src/core/types.js';
import { contextFactory } from '../../gateway/src/sources/context.js';

interface Events {
  alarm: { id: number };
  ticket: { id: string };
}

describe('event bus', () => {
  it('calls listeners in subscription order, in the publisher call, and keeps going past a throw', () => {
    const errors: Array<[string, string]> = [];
    const bus = new EventBus<Events>((type, err) => errors.push([String(type), (err as Error).message]));
    const seen: string[] = [];
    bus.on('alarm', (e) => seen.push(`a1:${e.id}`));
    bus.on('alarm', () => {
      throw new Error('listener broke');
    });
    const off = bus.on('alarm', (e) => seen.push(`a3:${e.id}`));
    bus.on('ticket', (e) => seen.push(`t:${e.id}`));
    bus.emit('alarm', { id: 1 });
    bus.emit('ticket', { id: 'T-1' });
    off();
    bus.emit('alarm', { id: 2 });
    expect(seen).toEqual(['a1:1', 'a3:1', 't:T-1', 'a1:2']);
    expect(errors).toEqual([
      ['alarm', 'listener broke'],
      ['alarm', 'listener broke'],
    ]);
    bus.clear();
    bus.emit('alarm', { id: 3 });
    expect(seen).toHaveLength(4);
  });
});

describe('lifecycle', () => {
  it('stops timers first, then the rest in reverse start order, then drops subscriptions', async () => {
    const order: string[] = [];
    const comp = (name: string): Component => ({
      name,
      start: async () => void order.push(`start ${name}`),
      stop: async () => {
        order.push(`stop ${name}`);
        if (name === 'b') throw new Error('stuck');
      },
      health: () => ({ state: 'ok' }),
    });
    const lc = new Lifecycle(pino({ level: 'silent' }));
    await lc.start(comp('db'), { report: false });
    await lc.start(comp('a'));
    await lc.start(comp('tick'), { stopFirst: true, report: false });
    await lc.start(comp('b'));
    lc.onStopped(() => order.push('unsubscribed'));
    expect(Object.keys(lc.health())).toEqual(['a', 'b']);
    await lc.stop();
    expect(order).toEqual([
      'start db',
      'start a',
      'start tick',
      'start b',
      'stop tick',
      'stop b',
      'stop a',
      'stop db',
      'unsubscribed',
    ]);
  });
});

describe('source context', () => {
  it('hands readings and messages to the pipeline and acks to the outbox through functions usable detached', () => {
    const calls: string[] = [];
    const make = contextFactory({
      pipeline: {
        handleReading: (r: Reading) => (calls.push(`reading ${r.device}`), null),
        handleMessage: (topic: string) => void calls.push(`message ${topic}`),
      },
      outbox: {
        afterCommit: (cb: () => void) => cb(),
        isFull: () => true,
        onDrain: () => () => calls.push('drain off'),
      },
      rejects: {
        publishRejected: (site, kind, device) => void calls.push(`rejected ${site}/${kind}/${device}`),
      },
      presence: { ensure: () => undefined, setPresence: () => undefined },
      log: pino({ level: 'silent' }),
      metrics: new Registry(),
      dataDir: '/tmp/x',
    });
    const failures: Error[] = [];
    const ctx = make(
      { name: 'modbus:line-1', start: async () => {}, stop: async () => {}, health: () => ({ state: 'ok' }) },
      (err) => failures.push(err),
    );
    const { ingest, ingestMessage, afterDurable, isFull, onDrain, publishRejected, fail } = ctx;
    ingest({ site: 's', kind: 'env-probe', device: 'd1', ts: 0, fields: {} }, 0);
    ingestMessage('facility/s/env-probe/d2/telemetry', Buffer.from('{}'), 0);
    afterDurable(() => calls.push('durable'));
    expect(isFull()).toBe(true);
    onDrain(() => {})();
    publishRejected('s', 'env-probe', 'd3', '{}');
    fail(new Error('gone'));
    expect(calls).toEqual([
      'reading d1',
      'message facility/s/env-probe/d2/telemetry',
      'durable',
      'drain off',
      'rejected s/env-probe/d3',
    ]);
    expect(failures.map((e) => e.message)).toEqual(['gone']);
    expect(ctx.dataDir).toBe('/tmp/x');
    // Every context shares the same functions: made once, not per source or per message.
    const other = make(
      { name: 'other', start: async () => {}, stop: async () => {}, health: () => ({ state: 'ok' }) },
      () => {},
    );
    expect(other.ingestMessage).toBe(ingestMessage);
  });
});
