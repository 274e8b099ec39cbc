/**
 * Slots for the rows of a virtual list's window [first, last): a row that was in the window last
 * time keeps its slot (so its DOM), a row coming in takes the lowest free slot, which is the slot
 * of a row that went out when one did. Slots are not the row's index modulo the window's length:
 * that length changes as rows of other heights come and go, and then every row in the window would
 * move to another slot's DOM and be drawn again.
 */
export function assignSlots(
  prev: ReadonlyMap<number, number>,
  first: number,
  last: number,
): Map<number, number> {
  const next = new Map<number, number>();
  const taken: boolean[] = [];
  for (let i = first; i < last; i++) {
    const s = prev.get(i);
    if (s !== undefined) {
      next.set(i, s);
      taken[s] = true;
    }
  }
  let free = 0;
  for (let i = first; i < last; i++) {
    if (next.has(i)) continue;
    while (taken[free]) free++;
    taken[free] = true;
    next.set(i, free);
  }
  return next;
}
