// The SLA countdown of a work order: pure, so it is tested without a browser.

export interface SlaTicket {
  status: string;
  createdAt: string;
  respondedAt: string | null;
  responseDueAt: string | null;
  resolveDueAt: string | null;
  /** On hold: the resolution clock stands still since heldSince (the gateway moves the deadline on resume). */
  onHold?: boolean;
  heldSince?: string | null;
  /** False for a hold whose reason leaves the clock running (workorders.pause); absent: paused. */
  clockPaused?: boolean;
}

export type SlaClass = 'sla-ok' | 'sla-amber' | 'sla-red' | 'sla-breach' | 'sla-held';

/** Amber once less than half the window is left, red below a fifth: a breach is seen coming. */
export const AMBER_AT = 0.5;
export const RED_AT = 0.2;

/**
 * The deadline that runs now (response until someone responds, then resolution), or null. A held
 * ticket's resolution clock is paused: `left` is what was left when it went on hold, and stays.
 */
export function slaOf(
  x: SlaTicket,
  now: number,
): { label: 'respond' | 'resolveBy' | 'held'; left: number; cls: SlaClass } | null {
  if (x.status === 'resolved' || x.status === 'closed') return null;
  const due = x.respondedAt ? x.resolveDueAt : x.responseDueAt;
  if (!due) return null;
  const end = Date.parse(due);
  // A hold stops the resolution clock only: a ticket nobody has responded to still has to be.
  if (x.onHold && x.clockPaused !== false && x.respondedAt) {
    const since = x.heldSince ? Date.parse(x.heldSince) : now;
    return { label: 'held', left: end - since, cls: 'sla-held' };
  }
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
