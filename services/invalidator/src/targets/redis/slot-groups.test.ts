import calculateSlot from 'cluster-key-slot';
import { describe, expect, it } from 'vitest';
import { groupBySlot } from './slot-groups.js';

describe('groupBySlot', () => {
  it('never mixes slots in one batch and keeps every key exactly once', () => {
    const keys = Array.from({ length: 2_000 }, (_, i) => `user:${i}`);
    const batches = groupBySlot(keys, 7);
    for (const batch of batches) {
      expect(batch.length).toBeGreaterThan(0);
      expect(batch.length).toBeLessThanOrEqual(7);
      expect(new Set(batch.map((key) => calculateSlot(key))).size).toBe(1);
    }
    expect(batches.flat().sort()).toEqual([...keys].sort());
  });

  it('keeps hash-tagged keys together, as Redis Cluster routes them', () => {
    const keys = [
      '{user:1}:profile',
      '{user:1}:posts',
      '{user:1}:lease',
      'other',
      '{}:literal-braces',
      '{}:more',
    ];
    const batches = groupBySlot(keys, 100);
    const tagged = batches.find((batch) => batch.includes('{user:1}:profile'));
    expect(tagged).toEqual(['{user:1}:profile', '{user:1}:posts', '{user:1}:lease']);
    // Empty hash tag {} hashes the whole key: these two are (almost surely) in different slots.
    expect(calculateSlot('{user:1}:posts')).toBe(calculateSlot('user:1'));
    expect(calculateSlot('foo')).toBe(12182); // the value from the Redis Cluster spec
  });

  it('splits a big slot group into batches of the requested size', () => {
    const keys = Array.from({ length: 25 }, (_, i) => `{same}:${i}`);
    expect(groupBySlot(keys, 10).map((b) => b.length)).toEqual([10, 10, 5]);
  });
});
