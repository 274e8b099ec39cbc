import { describe, expect, it } from 'vitest';
import { openDb } from '../../gateway/src/storage/db.js';
import {
  ticketEventLine,
  WORKORDER_MIGRATIONS,
  WorkOrderService,
  type TicketEvent,
} from '../../gateway/src/workorders/index.js';

const T0 = Date.UTC(2026, 9, 1, 8);
const MIN = 60_000;

describe('ticket_event line protocol', () => {
  it('writes one line per change with the KPI tags and fields, response/resolve minutes once', () => {
    const clock = { t: T0 };
    const svc = new WorkOrderService({ db: openDb(':memory:', WORKORDER_MIGRATIONS), now: () => clock.t });
    const events: TicketEvent[] = [];
    svc.onChange((e) => events.push(e));
    const t = svc.create({ title: 'Leak, main hall', site: 'estate 1', device: 'wm-1' }, 'desk');
    clock.t = T0 + 12 * MIN;
    svc.act(t.id, { action: 'acknowledge', actor: 'eve' });
    clock.t = T0 + 20 * MIN;
    svc.act(t.id, { action: 'assign', actor: 'eve', assignee: 'bob' });
    svc.act(t.id, { action: 'start', actor: 'bob' });
    clock.t = T0 + 90 * MIN;
    svc.act(t.id, { action: 'resolve', actor: 'bob' });
    const noDevice = svc.create({ title: 'Check the roof', site: 'estate' }, 'desk');
    const lines = events.map(ticketEventLine);
    expect(lines).toHaveLength(6);
    expect(lines[0]).toBe(
      `ticket_event,class=routine,device=wm-1,event=created,priority=medium,site=estate\\ 1,status=open ` +
        `ticket_id="${t.id}",action="create",escalation_level=0,repeat=false ${T0}\n`,
    );
    // The acknowledge is the response: 12 minutes; the later assign is not a second response.
    expect(lines[1]).toContain('status=acknowledged ');
    expect(lines[1]).toContain(',response_min=12,');
    expect(lines[2]).not.toContain('response_min');
    expect(lines[3]).toContain('action="start"');
    expect(lines[4]).toContain(',resolve_min=90,');
    expect(lines[4]).toContain('status=resolved ');
    expect(lines[4]).toMatch(new RegExp(` ${T0 + 90 * MIN}\\n$`));
    expect(lines[5]).not.toContain('device=');
    expect(lines[5]).toContain(`ticket_id="${noDevice.id}"`);
  });
});
