import { NAMESPACE_KEY_SEGMENT, TAG_SET_SEGMENT } from '@walpurge/rules';

const LEADING_HASH_TAG = /^\{[^}]*\}/;

/**
 * Whether a key is walpurge's own state rather than a cache entry: a tag set, its cluster journal
 * (`<set>:purging`, possibly behind a hash tag) or a namespace version. A pattern purge must never
 * delete those: without its tag set, the next purge of a tag purges nothing.
 */
export function isWalpurgeStateKey(key: string, keyPrefix: string): boolean {
  let rest = key.replace(LEADING_HASH_TAG, '');
  if (rest.startsWith(keyPrefix)) rest = rest.slice(keyPrefix.length);
  else if (key.startsWith(keyPrefix)) rest = key.slice(keyPrefix.length);
  else return false;
  rest = rest.replace(LEADING_HASH_TAG, '');
  return rest.startsWith(TAG_SET_SEGMENT) || rest.startsWith(NAMESPACE_KEY_SEGMENT);
}
