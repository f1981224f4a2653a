import calculateSlot from 'cluster-key-slot';
import { describe, expect, it } from 'vitest';
import { slotHashTag, tagJournalKey } from './tag-purge.js';

describe('tag journal key', () => {
  it('every slot has a hash tag that lands in it', () => {
    for (const slot of [0, 1, 5460, 5461, 10921, 16383]) expect(calculateSlot(slotHashTag(slot))).toBe(slot);
  });

  it.each([
    ['plain prefix', 'app:', 'app:tag:post-1'],
    ['prefix with a hash tag', '{app}:', '{app}:tag:post-1'],
    ['no prefix', '', 'tag:x'],
    ['braces in the tag value', 'app:', 'app:tag:a}b{c'],
    ['empty braces', 'a{}:', 'a{}:tag:{}x}'],
    ['unclosed brace in the prefix', 'a{b:', 'a{b:tag:c'],
  ])('%s: the journal is in the tag set slot and distinct from it', (_, prefix, setKey) => {
    const journal = tagJournalKey(setKey, prefix);
    expect(calculateSlot(journal)).toBe(calculateSlot(setKey));
    expect(journal).not.toBe(setKey);
  });

  it('keeps the key prefix in front whenever the prefix has no brace', () => {
    expect(tagJournalKey('app:tag:post-1', 'app:')).toMatch(/^app:\{[0-9a-z]+\}tag:post-1:purging$/);
    expect(tagJournalKey('{app}:tag:post-1', '{app}:')).toBe('{app}:tag:post-1:purging');
  });
});
