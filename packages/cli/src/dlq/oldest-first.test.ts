import { describe, expect, it } from 'vitest';
import { OldestFirst } from './oldest-first.js';

describe('OldestFirst', () => {
  const position = (item: { t: number; p: number; o: number }) => ({
    timestampMs: item.t,
    partition: item.p,
    offset: BigInt(item.o),
  });

  it('keeps the limit oldest of items added in any order, across trims', () => {
    const kept = new OldestFirst(3, position);
    // Partition 0 (newest) first, then older partitions: more than 2 × limit, so it trims on the way.
    for (const t of [90, 91, 92, 93, 94, 95, 96]) kept.add({ t, p: 0, o: t });
    for (const t of [10, 40, 5, 20]) kept.add({ t, p: 1, o: t });
    expect(kept.result().map((i) => i.t)).toEqual([5, 10, 20]);
  });

  it('breaks timestamp ties by partition, then offset', () => {
    const kept = new OldestFirst(10, position);
    for (const item of [
      { t: 1, p: 2, o: 0 },
      { t: 1, p: 1, o: 7 },
      { t: 1, p: 1, o: 3 },
    ])
      kept.add(item);
    expect(kept.result().map((i) => `${i.p}:${i.o}`)).toEqual(['1:3', '1:7', '2:0']);
  });

  it('keeps nothing for a limit of 0', () => {
    const kept = new OldestFirst(0, position);
    kept.add({ t: 1, p: 0, o: 0 });
    expect(kept.result()).toEqual([]);
  });
});
