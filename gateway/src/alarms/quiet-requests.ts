import { AlarmError, type Shelf, type ShelveRequest, type WindowRequest } from './types.js';
import { compileSchedule, isFinished, type MaintenanceWindow } from './windows.js';

/**
 * A shelf or maintenance window checked and built from a person's request, without touching any
 * store: the one place that refuses bad input, whether the record is then applied to this instance
 * alone or first written to the cluster's shared tables (ADR 0163). Throws `AlarmError` (400).
 */
export function buildShelf(req: ShelveRequest, now: number, id: string): Shelf {
  if (req.site === undefined && req.device === undefined && req.rule === undefined)
    throw new AlarmError('GW_ERR_ALARM_BAD_REQUEST', 'shelve needs a site, device or rule', 400);
  if (!(req.untilMs > now))
    throw new AlarmError('GW_ERR_ALARM_BAD_REQUEST', 'untilMs must be in the future', 400);
  if (!req.user || !req.reason)
    throw new AlarmError('GW_ERR_ALARM_BAD_REQUEST', 'shelve needs a user and a reason', 400);
  return {
    id,
    site: req.site ?? null,
    device: req.device ?? null,
    rule: req.rule ?? null,
    fromMs: now,
    untilMs: req.untilMs,
    user: req.user,
    userSubject: req.userSubject ?? null,
    reason: req.reason,
    createdAt: now,
    endedAt: null,
    endedBy: null,
    endedBySubject: null,
  };
}

/** See buildShelf. */
export function buildWindow(req: WindowRequest, now: number, id: string): MaintenanceWindow {
  const scope = [req.site, req.device, req.kind, req.rule];
  if (scope.every((x) => x === undefined))
    throw new AlarmError('GW_ERR_ALARM_BAD_REQUEST', 'a window needs a site, device, kind or rule', 400);
  if (!req.user || !req.reason)
    throw new AlarmError('GW_ERR_ALARM_BAD_REQUEST', 'a window needs a user and a reason', 400);
  try {
    compileSchedule(req.schedule);
  } catch (err) {
    throw new AlarmError('GW_ERR_ALARM_BAD_REQUEST', `schedule: ${(err as Error).message}`, 400);
  }
  const w: MaintenanceWindow = {
    id,
    site: req.site ?? null,
    device: req.device ?? null,
    kind: req.kind ?? null,
    rule: req.rule ?? null,
    schedule: req.schedule,
    reason: req.reason,
    createdBy: req.user,
    createdBySubject: req.userSubject ?? null,
    createdAt: now,
    endedAt: null,
    endedBy: null,
    endedBySubject: null,
  };
  if (isFinished(w, now))
    throw new AlarmError('GW_ERR_ALARM_BAD_REQUEST', 'schedule: no occurrence from now on', 400);
  return w;
}
