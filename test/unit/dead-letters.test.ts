import { describe, expect, it } from 'vitest';
import { DeadLetterQueue, type DeadLetterLink } from '../../adapters/mqtt/dead-letters.js';

/** A connection that records what was sent (pure logic: the broker is tested in integration). */
function link(): DeadLetterLink & { up: boolean; sent: Array<{ topic: string; id: number; dup: boolean }> } {
  let id = 0;
  const l = {
    up: true,
    sent: [] as Array<{ topic: string; id: number; dup: boolean }>,
    connected: () => l.up,
    nextId: () => (id = id >= 65535 ? 1 : id + 1),
    send: (topic: string, _p: Buffer, i: number, dup: boolean) => void l.sent.push({ topic, id: i, dup }),
  };
  return l;
}

describe('dead-letter queue', () => {
  it('keeps a letter until its PUBACK and counts it then', () => {
    const l = link();
    const q = new DeadLetterQueue(l, { maxMessages: 10, maxBytes: 1 << 20, inflight: 2 });
    q.enqueue('a', '{}');
    q.enqueue('b', '{}');
    q.enqueue('c', '{}');
    // Two in flight, the third waits for room.
    expect(l.sent.map((s) => s.topic)).toEqual(['a', 'b']);
    expect(q.stats()).toMatchObject({ published: 0, pending: 3, dropped: 0 });
    q.onPuback(1);
    expect(l.sent.map((s) => s.topic)).toEqual(['a', 'b', 'c']);
    q.onPuback(2);
    q.onPuback(3);
    q.onPuback(99); // not ours
    expect(q.stats()).toEqual({ published: 3, pending: 0, dropped: 0, pendingBytes: 0, restored: 0 });
  });

  it('sends again, marked duplicate, what was in flight when the connection dropped', () => {
    const l = link();
    const q = new DeadLetterQueue(l, { maxMessages: 10, maxBytes: 1 << 20, inflight: 5 });
    q.enqueue('a', '{}');
    l.up = false;
    q.enqueue('b', '{}');
    expect(l.sent).toEqual([{ topic: 'a', id: 1, dup: false }]);
    l.up = true;
    q.onConnect();
    expect(l.sent.slice(1)).toEqual([
      { topic: 'a', id: 1, dup: true },
      { topic: 'b', id: 2, dup: false },
    ]);
  });

  it('drops the oldest letters not yet sent at its bound, and counts them', () => {
    const l = link();
    l.up = false;
    const q = new DeadLetterQueue(l, { maxMessages: 3, maxBytes: 1 << 20, inflight: 5 });
    for (const t of ['a', 'b', 'c', 'd', 'e']) q.enqueue(t, '{}');
    expect(q.stats()).toMatchObject({ pending: 3, dropped: 2 });
    l.up = true;
    q.onConnect();
    expect(l.sent.map((s) => s.topic)).toEqual(['c', 'd', 'e']);
    // A byte bound too: one letter larger than the whole budget is dropped at once.
    const small = new DeadLetterQueue(link(), { maxMessages: 10, maxBytes: 4096, inflight: 1 });
    small.enqueue('x', 'y'.repeat(5000));
    expect(small.stats()).toMatchObject({ pending: 0, dropped: 1 });
  });
});
