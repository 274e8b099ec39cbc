import { describe, expect, it } from 'vitest';
import { HostState } from '../../adapters/mqtt/sparkplug/host-state.js';

const state = (online: boolean, timestamp: number): Buffer =>
  Buffer.from(JSON.stringify({ online, timestamp }));
const said = (m: { payload: Buffer } | undefined) =>
  m && (JSON.parse(m.payload.toString()) as { online: boolean; timestamp: number });

describe('Sparkplug host STATE shared by cluster members (ADR 0181)', () => {
  it('the member that connected last re-publishes its birth over an older member’s', () => {
    const a = new HostState('gw', true);
    const b = new HostState('gw', true);
    a.will(1000);
    a.birth();
    b.will(2000);
    b.birth();
    // Each sees the other's birth: only the newer (b) answers an older one.
    expect(said(b.onMessage(state(true, 1000)))).toEqual({ online: true, timestamp: 2000 });
    expect(a.onMessage(state(true, 2000))).toBeUndefined();
    // Its own birth coming back changes nothing.
    expect(b.onMessage(state(true, 2000))).toBeUndefined();
    // a dies: its will (1000) is older than the birth in force (2000); b puts its birth back.
    expect(said(b.onMessage(state(false, 1000)))).toEqual({ online: true, timestamp: 2000 });
  });

  it('a newer member’s will makes an older member connect again (edge nodes accept no older birth after it)', () => {
    const a = new HostState('gw', true);
    a.will(1000);
    a.birth();
    // b (connected at 2000) died: its will is not older than a's birth.
    expect(a.onMessage(state(false, 2000))).toBeUndefined();
    expect(a.takeReconnect()).toBe(true);
    expect(a.takeReconnect()).toBe(false);
    // The new connection's birth is newer than the will edge nodes saw.
    a.will(3000);
    expect(said(a.birth())).toEqual({ online: true, timestamp: 3000 });
    expect(a.reconnects).toBe(1);
  });

  it('a member outranked by a newer one announces no death on a clean stop', () => {
    const a = new HostState('gw', true);
    a.will(1000);
    a.birth();
    expect(a.outranked).toBe(false);
    a.onMessage(state(true, 2000));
    expect(a.outranked).toBe(true);
    // The newer member died: a connects again and is the newest.
    a.onMessage(state(false, 2000));
    a.will(3000);
    a.birth();
    expect(a.outranked).toBe(false);
    const single = new HostState('gw');
    single.will(1000);
    single.birth();
    single.onMessage(state(true, 2000));
    expect(single.outranked).toBe(false);
  });

  it('a single instance ignores an older online STATE, as before', () => {
    const h = new HostState('gw');
    h.will(2000);
    h.birth();
    expect(h.onMessage(state(true, 1000))).toBeUndefined();
    expect(said(h.onMessage(state(false, 1000)))).toEqual({ online: true, timestamp: 2000 });
    // Not shared: a newer offline is answered with the birth, no new connection.
    expect(said(h.onMessage(state(false, 3000)))).toEqual({ online: true, timestamp: 2000 });
    expect(h.takeReconnect()).toBe(false);
  });
});
