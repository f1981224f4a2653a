import { describe, expect, it } from 'vitest';
import { tagJournalKey, tagSetKey } from '@walpurge/rules';
import { isWalpurgeStateKey } from './walpurge-state-keys.js';

describe('walpurge state keys (never deleted by a pattern purge)', () => {
  it.each(['app:', '{app}:', ''])(
    'with prefix %j: tag sets, their journals and namespace versions',
    (prefix) => {
      const set = tagSetKey(prefix, 'users');
      expect(isWalpurgeStateKey(set, prefix)).toBe(true);
      expect(isWalpurgeStateKey(tagJournalKey(set, prefix), prefix)).toBe(true);
      expect(isWalpurgeStateKey(`${prefix}ns:catalog`, prefix)).toBe(true);
      expect(isWalpurgeStateKey(`${prefix}user:1`, prefix)).toBe(false);
      expect(isWalpurgeStateKey(`${prefix}user:tag:1`, prefix)).toBe(false);
      expect(isWalpurgeStateKey(`${prefix}{h}user:1`, prefix)).toBe(false);
    },
  );

  it('ignores keys outside the prefix', () => {
    expect(isWalpurgeStateKey('other:tag:users', 'app:')).toBe(false);
  });
});
