// Layout shared with the invalidator: see @walpurge/rules tag-set.ts. An entry lives at
// `${prefix}${key}`; a tag's set lives at tagSetKey(prefix, tag) and its members are keys WITHOUT
// the prefix (as rules name them).
import { tagSetKey } from '@walpurge/rules';

export { tagSetKey };

export function entryKey(prefix: string, key: string): string {
  return `${prefix}${key}`;
}
