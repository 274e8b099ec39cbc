import type { QueueRow } from './queue.js';

/**
 * Cluster mode (ADR 0179): the shared copy of the queue decides whether this member may send a row.
 * Implemented over PostgreSQL by the cluster view (view/notify-claims.ts) and handed to the
 * notification service by the composition root; a single gateway has none and sends as before.
 */
export interface DeliveryFence {
  /**
   * Before each attempt: `go` when this member holds the row in the shared copy (or the copy has
   * no row yet) and has claimed it for `attemptMs`; `taken` when another member took it over, or it
   * is recorded delivered there. When the shared store cannot be reached in time: `unfenced` (the
   * attempt goes ahead: safety notifications do not wait on PostgreSQL).
   */
  claim(row: QueueRow, attemptMs: number): Promise<'go' | 'taken' | 'unfenced'>;
  /**
   * After a claimed attempt: the claim ends, and a delivered row is recorded delivered at once (not
   * only when the view writer's next batch copies it). Never rejects (the claim then runs out).
   */
  release(row: QueueRow, deliveredAt: number | null): Promise<void>;
  /**
   * At start: the seqs of these pending rows that the shared copy shows taken over by another
   * member or delivered. Rejects when the shared store cannot be reached in time.
   */
  taken(rows: readonly QueueRow[]): Promise<Set<number>>;
}
