import { describe, expect, it } from 'vitest';
import { decideGroup, keptIncident, type WindowRaise } from '../../gateway/src/alarms/incident-window.js';
import { IncidentGrouper } from '../../gateway/src/alarms/grouping.js';
import { alarmsSchema } from '../../gateway/src/alarms/schema.js';

const cfg = alarmsSchema.parse({ grouping: { windowMs: 1000 } }).grouping;
const r = (alarmId: string, ts: number, critical = false): WindowRaise => ({ alarmId, ts, critical });

describe('decideGroup (the cluster-wide window count, ADR 0170)', () => {
  it('counts the raises of every member within the window against the class threshold', () => {
    // key: 5 normal. Four waiting (from two members) and this one: an incident of all five, oldest first.
    const waiting = [r('b1', 100), r('a1', 50), r('a2', 300), r('b2', 400)];
    const d = decideGroup(cfg, 'key', r('a3', 500), undefined, [...waiting, r('a3', 500)]);
    expect(d).toEqual({
      kind: 'create',
      members: [r('a1', 50), r('b1', 100), r('a2', 300), r('b2', 400), r('a3', 500)],
    });
  });

  it('counts raises that reached the shared table out of order (a later one first)', () => {
    // Members commit in any order: the last to count may be an earlier raise than those waiting.
    const waiting = [r('a1', 100), r('b1', 300), r('a2', 400), r('b2', 500)];
    const d = decideGroup(cfg, 'key', r('a0', 50), undefined, waiting);
    expect(d).toEqual({ kind: 'create', members: [r('a0', 50), ...waiting] });
  });

  it('is below the threshold with fewer, and forgets raises older than the window', () => {
    const waiting = [r('old', 0), r('a1', 600), r('b1', 700), r('a2', 800)];
    expect(decideGroup(cfg, 'key', r('b2', 1200), undefined, waiting).kind).toBe('none');
  });

  it('needs fewer when a critical asset is among them', () => {
    const waiting = [r('a1', 100), r('b1', 200, true)];
    const d = decideGroup(cfg, 'key', r('a2', 300), undefined, waiting);
    expect(d.kind).toBe('create');
  });

  it('joins the open incident while raises keep coming within the window, not after', () => {
    const open = { id: 'inc-1', lastAlarmAt: 1000 };
    expect(decideGroup(cfg, 'key', r('x', 2000), open, [])).toEqual({ kind: 'join', incidentId: 'inc-1' });
    expect(decideGroup(cfg, 'key', r('y', 2001), open, []).kind).toBe('none');
  });

  it('decides as the single-instance grouper for one member’s raises', () => {
    const ids = ['a', 'b', 'c', 'd', 'e', 'f', 'g'];
    const ts = [0, 100, 1200, 1300, 1400, 1500, 1600];
    const g = new IncidentGrouper(cfg, () => 'inc');
    let waiting: WindowRaise[] = [];
    let open: { id: string; lastAlarmAt: number } | undefined;
    for (let i = 0; i < ids.length; i++) {
      const raise = r(ids[i]!, ts[i]!);
      const local = g.onRaise(
        { id: raise.alarmId, site: 's', rule: 'x', class: 'key', critical: false },
        raise.ts,
      );
      waiting.push(raise);
      const d = decideGroup(cfg, 'key', raise, open, waiting);
      expect(d.kind === 'none', `raise ${raise.alarmId}`).toBe(local === null);
      if (d.kind === 'create') {
        expect(d.members.map((m) => m.alarmId)).toEqual(local!.joined);
        open = { id: 'inc', lastAlarmAt: raise.ts };
        waiting = [];
      } else if (d.kind === 'join') {
        open!.lastAlarmAt = raise.ts;
        waiting = waiting.filter((w) => w !== raise);
      }
    }
  });
});

describe('keptIncident (reconciling incidents made apart)', () => {
  it('keeps the one opened first, then the lower id, whichever side asks', () => {
    const a = { id: 'b-2', openedAt: 100 };
    const b = { id: 'a-1', openedAt: 200 };
    expect(keptIncident(a, b)).toEqual({ kept: a, merged: b });
    expect(keptIncident(b, a)).toEqual({ kept: a, merged: b });
    const c = { id: 'a-1', openedAt: 100 };
    expect(keptIncident(a, c)).toEqual({ kept: c, merged: a });
    expect(keptIncident(c, a)).toEqual({ kept: c, merged: a });
  });
});
