import type { AlarmEvent, Shelf, ShelveRequest, WindowRequest } from '../alarms/types.js';
import type { MaintenanceWindow } from '../alarms/windows.js';

/**
 * Cluster mode (ADR 0163): what the shelf and window routes call instead of the alarm service, so
 * that a shelf or window set or ended through any instance is written to PostgreSQL first and
 * applies on every instance. Bad input throws `AlarmError` as the alarm service does; PostgreSQL
 * out of reach throws `QuietUnavailable` (503), and then nothing was set or ended anywhere.
 */
export interface SharedQuiet {
  shelve(req: ShelveRequest): Promise<Shelf>;
  unshelve(id: string, user: string, subject?: string): Promise<Shelf>;
  listShelves(activeOnly: boolean): Promise<Shelf[]>;
  createWindow(req: WindowRequest): Promise<MaintenanceWindow>;
  /** `events`: the alarms this instance releases now (the others release their own). */
  endWindow(
    id: string,
    user: string,
    subject?: string,
  ): Promise<{ window: MaintenanceWindow; events: AlarmEvent[] }>;
  listWindows(all: boolean): Promise<MaintenanceWindow[]>;
}

/** PostgreSQL could not be reached: a domain error with its catalogue code (http/errors.ts). */
export class QuietUnavailable extends Error {
  readonly code = 'GW_ERR_UNAVAILABLE';
  readonly status = 503;

  constructor(what: string, cause: unknown) {
    super(
      `${what}: the cluster's shared store (PostgreSQL) cannot be reached, so nothing was changed on any instance; try again: ${(cause as Error).message}`,
      { cause },
    );
    this.name = 'QuietUnavailable';
  }
}
