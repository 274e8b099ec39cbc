/** A binary min-heap of device slots ordered by due time, ties by slot index (deterministic order). */
export class DueHeap {
  private readonly items: number[] = [];
  constructor(private readonly due: Float64Array) {}

  get size(): number {
    return this.items.length;
  }

  private less(a: number, b: number): boolean {
    const da = this.due[a] as number;
    const db = this.due[b] as number;
    return da < db || (da === db && a < b);
  }

  push(slot: number): void {
    const it = this.items;
    it.push(slot);
    let i = it.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.less(it[i] as number, it[parent] as number)) break;
      [it[i], it[parent]] = [it[parent] as number, it[i] as number];
      i = parent;
    }
  }

  peek(): number | undefined {
    return this.items[0];
  }

  pop(): number | undefined {
    const it = this.items;
    const top = it[0];
    const last = it.pop();
    if (it.length > 0 && last !== undefined) {
      it[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < it.length && this.less(it[l] as number, it[m] as number)) m = l;
        if (r < it.length && this.less(it[r] as number, it[m] as number)) m = r;
        if (m === i) break;
        [it[i], it[m]] = [it[m] as number, it[i] as number];
        i = m;
      }
    }
    return top;
  }
}
