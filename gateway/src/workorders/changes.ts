import type { TicketStore } from './store.js';
import type { Ticket, TicketEvent, TicketEventType } from './types.js';

interface Touched {
  t: Ticket;
  /** How many history entries the ticket had (all stored) before this operation. */
  from: number;
  type: TicketEventType;
  /** Set for a ticket this operation creates: its sequence number. */
  seq: number | null;
}

/**
 * The tickets one operation changes, as working copies: the tickets in memory stay as they are
 * until the change has committed, so a failed commit leaves memory as the database has it.
 * History entries are shared with the original (they are never changed once written); everything
 * else is copied.
 */
export class Changes {
  private readonly touched = new Map<string, Touched>();

  get size(): number {
    return this.touched.size;
  }

  /** The working copy of a ticket, made on first use; later calls in the same operation get the same copy. */
  edit(t: Ticket, type: TicketEventType = 'updated'): Ticket {
    const cur = this.touched.get(t.id);
    if (cur) {
      if (cur.type === 'updated' && type === 'escalated') cur.type = type;
      return cur.t;
    }
    const copy: Ticket = { ...structuredClone({ ...t, history: [] }), history: t.history.slice() };
    this.touched.set(t.id, { t: copy, from: t.history.length, type, seq: null });
    return copy;
  }

  /** A ticket this operation creates. */
  add(t: Ticket, seq: number): void {
    this.touched.set(t.id, { t, from: 0, type: 'created', seq });
  }

  /** The working copy of a ticket if this operation has one. */
  get(id: string): Ticket | undefined {
    return this.touched.get(id)?.t;
  }

  /** Tickets this operation creates. */
  *created(): Iterable<Ticket> {
    for (const c of this.touched.values()) if (c.seq !== null) yield c.t;
  }

  /** Sequence numbers this operation took for new tickets (given back when the commit fails). */
  seqs(): number[] {
    return [...this.touched.values()].flatMap((c) => (c.seq === null ? [] : [c.seq]));
  }

  tickets(): Ticket[] {
    return [...this.touched.values()].map((c) => c.t);
  }

  events(): TicketEvent[] {
    return [...this.touched.values()].map((c) => ({
      type: c.type,
      // Without its history (the new lines are in `entries`): cloning a long trail on every change would cost O(n²).
      ticket: structuredClone({ ...c.t, history: [] }),
      entries: c.t.history.slice(c.from),
      firstEntry: c.from,
    }));
  }

  /** By ticket id, the first history entry this operation added (what the shared view copies with it). */
  firstEntries(): Map<string, number> {
    return new Map([...this.touched.values()].map((c) => [c.t.id, c.from]));
  }

  /** Drops the tickets `keep` refuses (they are not written); returns how many were dropped. */
  keepOnly(keep: (id: string) => boolean): number {
    let n = 0;
    for (const id of [...this.touched.keys()])
      if (!keep(id)) {
        this.touched.delete(id);
        n++;
      }
    return n;
  }

  /** Writes every touched ticket and its new history lines (call inside the transaction). */
  save(store: TicketStore): void {
    for (const c of this.touched.values()) store.save(c.t, c.seq, c.t.history.length - c.from);
  }
}
