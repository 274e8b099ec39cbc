import { randomUUID } from 'node:crypto';
import { buildShelf, buildWindow } from '../alarms/quiet-requests.js';
import {
  AlarmError,
  type AlarmEvent,
  type Shelf,
  type ShelveRequest,
  type WindowRequest,
} from '../alarms/types.js';
import { isFinished, type MaintenanceWindow } from '../alarms/windows.js';
import type { Logger } from '../core/log.js';
import { shelfAsListed } from './rows.js';
import type { QuietStore } from './store.js';
import type { QuietTarget } from './sync.js';
import { QuietUnavailable, type SharedQuiet } from './types.js';

/**
 * Shelves and windows set and ended through this instance in cluster mode (ADR 0163): checked as
 * the alarm service checks them, written to PostgreSQL (which tells the other instances), then
 * applied here at once. A write that does not reach PostgreSQL changes nothing here either: a shelf
 * only one instance knew about would hold back only some of the cluster's alarms, silently.
 */
export class ClusterQuiet implements SharedQuiet {
  constructor(
    private readonly store: QuietStore,
    private readonly alarms: QuietTarget,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
    private readonly newId: () => string = randomUUID,
  ) {}

  async shelve(req: ShelveRequest): Promise<Shelf> {
    const shelf = buildShelf(req, this.now(), this.newId());
    await shared('shelf not set', this.store.insertShelf(shelf));
    this.alarms.applyShelf(shelf);
    this.log.info({ shelf: shelf.id, user: shelf.user, reason: shelf.reason }, 'shelf set for the cluster');
    return { ...shelf };
  }

  async unshelve(id: string, user: string, subject?: string): Promise<Shelf> {
    const now = this.now();
    const ended = await shared(
      'shelf not ended',
      this.store.endShelf(id, { at: now, by: user, subject: subject ?? null }, now),
    );
    if (!ended) throw new AlarmError('GW_ERR_ALARM_NOT_FOUND', `no active shelf ${id}`, 404);
    this.alarms.applyShelf(ended);
    return ended;
  }

  async listShelves(activeOnly: boolean): Promise<Shelf[]> {
    const now = this.now();
    const rows = await shared('shelves not listed', this.store.shelves(!activeOnly, now));
    return rows.map((s) => shelfAsListed(s, now));
  }

  async createWindow(req: WindowRequest): Promise<MaintenanceWindow> {
    const w = buildWindow(req, this.now(), this.newId());
    await shared('window not set', this.store.insertWindow(w));
    this.alarms.applyWindow(w);
    this.log.info(
      { window: w.id, user: w.createdBy, reason: w.reason },
      'maintenance window set for the cluster',
    );
    return { ...w };
  }

  async endWindow(
    id: string,
    user: string,
    subject?: string,
  ): Promise<{ window: MaintenanceWindow; events: AlarmEvent[] }> {
    const now = this.now();
    const cur = await shared('window not ended', this.store.window(id));
    if (!cur) throw new AlarmError('GW_ERR_ALARM_NOT_FOUND', `no maintenance window ${id}`, 404);
    if (isFinished(cur, now))
      throw new AlarmError('GW_ERR_WINDOW_ENDED', `window ${id} has already ended`, 409);
    const ended = await shared(
      'window not ended',
      this.store.endWindow(id, { at: now, by: user, subject: subject ?? null }),
    );
    // Someone ended it between the two statements.
    if (!ended) throw new AlarmError('GW_ERR_WINDOW_ENDED', `window ${id} has already ended`, 409);
    const events = this.alarms.applyWindow(ended);
    return { window: ended, events };
  }

  async listWindows(all: boolean): Promise<MaintenanceWindow[]> {
    const now = this.now();
    const rows = await shared('windows not listed', this.store.windows(all, now));
    return all ? rows : rows.filter((w) => !isFinished(w, now));
  }
}

/** A statement on the shared store; PostgreSQL out of reach becomes a 503 saying nothing changed. */
async function shared<T>(what: string, p: Promise<T>): Promise<T> {
  try {
    return await p;
  } catch (err) {
    throw new QuietUnavailable(what, err);
  }
}
