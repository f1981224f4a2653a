/**
 * What `GetOptions.version` may return for a loaded value: the version of the row it came from
 * (the rule's `version` column). `null`/`undefined`: the value has no version (e.g. a cached "not
 * found").
 */
export type RowVersion = string | number | bigint | Date | null | undefined;

/** Why a fill with a version function was stored without a version (walpurge_client_fills_without_version_total). */
export type MissingVersionReason = 'none' | 'threw' | 'invalid';

export type VersionResult =
  { version: string } | { version: undefined; reason: MissingVersionReason; error?: unknown };

/**
 * The text stored in the entry's `ver` field, in the forms the consistency observer compares:
 * integers as decimal text, dates as ISO-8601 (Date.toISOString()), strings as given. Throws a
 * TypeError for what it cannot represent faithfully: a number beyond 2^53 has already lost digits
 * (a bigint or the column selected as text keeps them), a NaN/invalid Date, an empty string, a
 * value of another type (untyped JavaScript callers).
 */
export function rowVersionText(version: Exclude<RowVersion, null | undefined>): string {
  switch (typeof version) {
    case 'string':
      if (version === '') throw new TypeError('the version is an empty string');
      return version;
    case 'bigint':
      return version.toString();
    case 'number':
      if (!Number.isFinite(version)) throw new TypeError(`the version is ${String(version)}`);
      if (Number.isInteger(version) && !Number.isSafeInteger(version)) {
        throw new TypeError(
          `the version ${String(version)} is beyond 2^53 and has lost digits: return a bigint or a string`,
        );
      }
      return String(version);
    default:
      if (version instanceof Date) {
        if (Number.isNaN(version.getTime())) throw new TypeError('the version is an invalid Date');
        return version.toISOString();
      }
      throw new TypeError(
        `the version is a ${typeof version}: return a string, number, bigint, Date, null or undefined`,
      );
  }
}

/**
 * Runs the caller's version function (`compute` calls it on the loaded value). Never throws: a function that throws or
 * returns something unusable must not cost the reader its value nor the cache its entry, so the
 * value is stored without a version (the observer counts such entries as unverifiable) and the
 * reason is reported for the caller's metric and log.
 */
export function versionOf(compute: () => RowVersion): VersionResult {
  let raw: RowVersion;
  try {
    raw = compute();
  } catch (error) {
    return { version: undefined, reason: 'threw', error };
  }
  if (raw === null || raw === undefined) return { version: undefined, reason: 'none' };
  try {
    return { version: rowVersionText(raw) };
  } catch (error) {
    return { version: undefined, reason: 'invalid', error };
  }
}
