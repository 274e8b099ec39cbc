// The SLA countdown of a work order: pure, so it is tested without a browser.

export interface SlaTicket {
  status: string;
  createdAt: string;
  respondedAt: string | null;
  responseDueAt: string | null;
  resolveDueAt: string | null;
}

export type SlaClass = 'sla-ok' | 'sla-amber' | 'sla-red' | 'sla-breach';

/** Amber once less than half the window is left, red below a fifth: a breach is seen coming. */
export const AMBER_AT = 0.5;
export const RED_AT = 0.2;

/** The deadline that runs now (response until someone responds, then resolution), or null. */
export function slaOf(
  x: SlaTicket,
  now: number,
): { label: 'respond' | 'resolveBy'; left: number; cls: SlaClass } | null {
  if (x.status === 'resolved' || x.status === 'closed' || x.status === 'on_hold') return null;
  const due = x.respondedAt ? x.resolveDueAt : x.responseDueAt;
  if (!due) return null;
  const end = Date.parse(due);
  // Both deadlines run from when the work order was raised (DOMAIN.md: respond in 30 min, handle in 4 h).
  const start = Date.parse(x.createdAt);
  const window = Math.max(1, end - start);
  const left = end - now;
  const cls: SlaClass =
    left <= 0
      ? 'sla-breach'
      : left < window * RED_AT
        ? 'sla-red'
        : left < window * AMBER_AT
          ? 'sla-amber'
          : 'sla-ok';
  return { label: x.respondedAt ? 'resolveBy' : 'respond', left, cls };
}
