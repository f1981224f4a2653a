import { describe, expect, it } from 'vitest';
import { isolatePoison } from './isolate-poison.js';

class Poison extends Error {}
class Fatal extends Error {}

/** An attempt that rejects a subset holding any poison item, and records every subset it saw. */
function target(poison: ReadonlySet<number>, fatalAt?: number) {
  const seen: number[][] = [];
  const purged: number[] = [];
  const attempt = async (part: readonly number[]): Promise<void> => {
    seen.push([...part]);
    if (fatalAt !== undefined && part.includes(fatalAt)) throw new Fatal('connection lost');
    if (part.some((item) => poison.has(item))) throw new Poison(`poison in ${part.join(',')}`);
    purged.push(...part);
  };
  return { seen, purged, attempt };
}

const isFatal = (error: unknown): boolean => error instanceof Fatal;
const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

describe('isolatePoison', () => {
  it('a batch that succeeds costs one attempt and reports no poison', async () => {
    const { attempt, seen } = target(new Set());
    const poisoned: number[] = [];
    const attempts = await isolatePoison(range(10), attempt, async (i) => void poisoned.push(i), isFatal);
    expect(attempts).toBe(1);
    expect(seen).toEqual([range(10)]);
    expect(poisoned).toEqual([]);
  });

  it.each([1, 2, 7, 64, 1000])(
    'one poison item among %i costs at most 1 + 2·ceil(log2 N) attempts; every good item is purged',
    async (n) => {
      const bad = Math.floor(n / 3);
      const { attempt, seen, purged } = target(new Set([bad]));
      const poisoned: Array<[number, unknown]> = [];
      const attempts = await isolatePoison(
        range(n),
        attempt,
        async (i, error) => void poisoned.push([i, error]),
        isFatal,
      );
      expect(attempts).toBe(seen.length);
      expect(attempts).toBeLessThanOrEqual(1 + 2 * Math.ceil(Math.log2(n)));
      expect(poisoned.map(([i]) => i)).toEqual([bad]);
      expect(poisoned[0]?.[1]).toBeInstanceOf(Poison);
      expect(new Set(purged)).toEqual(new Set(range(n).filter((i) => i !== bad)));
    },
  );

  it('finds every poison item, in item order, and purges the good ones in order', async () => {
    const poison = new Set([0, 5, 6, 19]);
    const { attempt, purged } = target(poison);
    const poisoned: number[] = [];
    await isolatePoison(range(20), attempt, async (i) => void poisoned.push(i), isFatal);
    expect(poisoned).toEqual([0, 5, 6, 19]);
    expect(purged).toEqual(range(20).filter((i) => !poison.has(i)));
  });

  it('all items poison: each is reported once', async () => {
    const { attempt } = target(new Set(range(9)));
    const poisoned: number[] = [];
    await isolatePoison(range(9), attempt, async (i) => void poisoned.push(i), isFatal);
    expect(poisoned).toEqual(range(9));
  });

  it('a fatal error (retriable, aborted) is rethrown at once, whichever half meets it', async () => {
    const { attempt, seen } = target(new Set([1]), 6);
    const poisoned: number[] = [];
    const error = await isolatePoison(range(8), attempt, async (i) => void poisoned.push(i), isFatal).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(Fatal);
    // The full batch (contains 6), nothing else: a fatal error is never split.
    expect(seen).toEqual([range(8)]);
    expect(poisoned).toEqual([]);
  });

  it('a fatal error in the right half after the left half isolated its poison', async () => {
    let calls = 0;
    const attempt = async (part: readonly number[]): Promise<void> => {
      calls += 1;
      if (calls === 1 || part.includes(0)) throw new Poison('poison');
      if (part.includes(3)) throw new Fatal('aborted');
    };
    const poisoned: number[] = [];
    await expect(
      isolatePoison([0, 1, 2, 3], attempt, async (i) => void poisoned.push(i), isFatal),
    ).rejects.toBeInstanceOf(Fatal);
    expect(poisoned).toEqual([0]);
  });

  it('an onPoison failure (e.g. the dead-letter send) propagates', async () => {
    const { attempt } = target(new Set([2]));
    await expect(
      isolatePoison(range(4), attempt, () => Promise.reject(new Fatal('dead-letter down')), isFatal),
    ).rejects.toThrow('dead-letter down');
  });

  it('an empty batch makes no attempt', async () => {
    const { attempt } = target(new Set());
    expect(await isolatePoison([], attempt, async () => undefined, isFatal)).toBe(0);
  });
});
