import { describe, expect, it } from 'vitest';
import { Ring } from '../../dashboards/web/src/ring.js';
import { slaOf, type SlaTicket } from '../../dashboards/web/src/sla.js';

const T0 = Date.parse('2026-11-02T08:00:00Z');
const iso = (ms: number) => new Date(ms).toISOString();
const MIN = 60_000;

function ticket(over: Partial<SlaTicket> = {}): SlaTicket {
  return {
    status: 'open',
    createdAt: iso(T0),
    respondedAt: null,
    responseDueAt: iso(T0 + 30 * MIN),
    resolveDueAt: iso(T0 + 240 * MIN),
    ...over,
  };
}

describe('SLA countdown', () => {
  it('turns amber at half the response window, red at a fifth, and breached past the deadline', () => {
    expect(slaOf(ticket(), T0 + 5 * MIN)).toEqual({ label: 'respond', left: 25 * MIN, cls: 'sla-ok' });
    expect(slaOf(ticket(), T0 + 16 * MIN)!.cls).toBe('sla-amber');
    expect(slaOf(ticket(), T0 + 25 * MIN)!.cls).toBe('sla-red');
    const late = slaOf(ticket(), T0 + 31 * MIN)!;
    expect(late.cls).toBe('sla-breach');
    expect(late.left).toBe(-MIN);
  });

  it('follows the resolution deadline once someone responded, and stops when resolved', () => {
    const acked = ticket({ status: 'assigned', respondedAt: iso(T0 + 10 * MIN) });
    expect(slaOf(acked, T0 + 60 * MIN)).toEqual({ label: 'resolveBy', left: 180 * MIN, cls: 'sla-ok' });
    expect(slaOf(acked, T0 + 200 * MIN)!.cls).toBe('sla-red');
    expect(slaOf({ ...acked, status: 'resolved' }, T0 + 300 * MIN)).toBeNull();
    expect(slaOf({ ...acked, status: 'closed' }, T0 + 300 * MIN)).toBeNull();
    expect(slaOf(ticket({ responseDueAt: null }), T0)).toBeNull();
  });
});

describe('sparkline ring buffer', () => {
  it('keeps the last values, oldest first', () => {
    const r = new Ring(3);
    expect(r.values()).toEqual([]);
    r.push(1);
    r.push(2);
    expect(r.values()).toEqual([1, 2]);
    r.push(3);
    r.push(4);
    r.push(5);
    expect(r.length).toBe(3);
    expect(r.values()).toEqual([3, 4, 5]);
  });
});
