import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { LeaderDuties } from '../../gateway/src/cluster/leader.js';
import type { Component } from '../../gateway/src/core/types.js';

function component(name: string, log: string[]): Component {
  let on = false;
  return {
    name,
    start: async () => void (log.push(`start ${name}`), (on = true)),
    stop: async () => void (log.push(`stop ${name}`), (on = false)),
    health: () => ({ state: on ? 'ok' : 'stopped' }),
  };
}

describe('leader duties', () => {
  it('run the singletons only while leading, in order, and not again after the gateway stopped them', async () => {
    const log: string[] = [];
    const duties = new LeaderDuties(pino({ level: 'silent' }));
    const a = duties.bind(component('escalation', log));
    const b = duties.bind(component('notifications', log));
    await a.start();
    await b.start();
    expect(log).toEqual([]);
    expect(b.health().detail).toMatch(/standby/);

    await duties.set(true);
    expect(log).toEqual(['start escalation', 'start notifications']);
    expect(b.health().state).toBe('ok');
    await duties.set(true);
    await duties.set(false);
    expect(log.slice(2)).toEqual(['stop notifications', 'stop escalation']);

    await duties.set(true);
    await b.stop();
    await a.stop();
    await duties.set(false);
    await duties.set(true);
    // Started with the third leadership, stopped by the gateway, never started again.
    expect(log.slice(4)).toEqual([
      'start escalation',
      'start notifications',
      'stop notifications',
      'stop escalation',
    ]);
  });
});
