import { describe, expect, it } from 'vitest';
import { groupKeysBySlot, hashSlot } from './hash-slot.js';

describe('hash slots', () => {
  it('hash tags put keys in one slot; known slots match Redis', () => {
    // CLUSTER KEYSLOT foo → 12182 and 123456789 → 12739 (the CRC16 check value), per Redis.
    expect(hashSlot('foo')).toBe(12182);
    expect(hashSlot('123456789')).toBe(12739);
    expect(hashSlot('user:{42}')).toBe(hashSlot('{42}:profile'));
  });

  it('groups keys by slot in first-seen order', () => {
    const groups = groupKeysBySlot(['user:{1}', 'a', 'user:{1}:x', 'b']);
    expect(groups[0]).toEqual(['user:{1}', 'user:{1}:x']);
    expect(groups.flat().sort()).toEqual(['a', 'b', 'user:{1}', 'user:{1}:x']);
    for (const group of groups) expect(new Set(group.map(hashSlot)).size).toBe(1);
  });
});
