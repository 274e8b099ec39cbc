import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { SqliteDeadLetterStore } from '../../adapters/mqtt/dead-letter-store.js';
import { DeadLetterQueue, type DeadLetterLink } from '../../adapters/mqtt/dead-letters.js';

/** Dead letters kept in SQLite until PUBACK (ADR 0090), on a real file; the broker is in integration. */
function link(up = true): DeadLetterLink & { up: boolean; sent: string[] } {
  let id = 0;
  const l = {
    up,
    sent: [] as string[],
    connected: () => l.up,
    nextId: () => ++id,
    send: (topic: string) => void l.sent.push(topic),
  };
  return l;
}
const LIMITS = { maxMessages: 3, maxBytes: 1 << 20, inflight: 5 };
const rows = (file: string) => {
  const db = new Database(file, { readonly: true });
  try {
    return (db.prepare('SELECT topic FROM dead_letters ORDER BY id').all() as { topic: string }[]).map(
      (r) => r.topic,
    );
  } finally {
    db.close();
  }
};

describe('dead letters on disk', () => {
  let dir: string | undefined;
  afterEach(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });
  const file = () => join((dir ??= mkdtempSync(join(tmpdir(), 'fgw-dl-'))), 'dead-letters.db');

  it('keeps unacknowledged letters for the next start, in order, within the bound', () => {
    const f = file();
    const store = new SqliteDeadLetterStore(f);
    const l = link(false);
    const q = new DeadLetterQueue(l, LIMITS, store);
    for (const t of ['a', 'b', 'c', 'd']) q.enqueue(t, '{}');
    store.flush();
    // The oldest was dropped at the bound: gone from disk too.
    expect(rows(f)).toEqual(['b', 'c', 'd']);
    store.close();

    const again = new SqliteDeadLetterStore(f);
    const l2 = link();
    const q2 = new DeadLetterQueue(l2, LIMITS, again);
    expect(q2.stats()).toMatchObject({ restored: 3, pending: 3 });
    q2.onConnect();
    expect(l2.sent).toEqual(['b', 'c', 'd']);
    q2.onPuback(1);
    q2.onPuback(2);
    again.flush();
    expect(rows(f)).toEqual(['d']);
    // A smaller bound at the next start drops the oldest kept letters, on disk as well.
    q2.enqueue('e', '{}');
    q2.enqueue('f', '{}');
    again.close();
    const third = new SqliteDeadLetterStore(f);
    const q3 = new DeadLetterQueue(link(false), { ...LIMITS, maxMessages: 2 }, third);
    expect(q3.stats()).toMatchObject({ restored: 3, pending: 2, dropped: 1 });
    third.flush();
    expect(rows(f)).toEqual(['e', 'f']);
    third.close();
  });

  it('writes nothing for a letter acknowledged in the turn it was queued', async () => {
    const f = file();
    const store = new SqliteDeadLetterStore(f);
    const q = new DeadLetterQueue(link(), LIMITS, store);
    q.enqueue('a', '{}');
    q.onPuback(1);
    await new Promise((r) => setImmediate(r));
    expect(rows(f)).toEqual([]);
    q.enqueue('b', '{}');
    await new Promise((r) => setImmediate(r));
    expect(rows(f)).toEqual(['b']);
    store.close();
  });
});
