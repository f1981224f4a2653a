/**
 * Field names of a cache entry's Redis hash (see lua-scripts.ts for what each holds). Exported for
 * readers outside this package that inspect entries, like the consistency observer; the Lua scripts
 * spell the same names.
 */
export const ENTRY_FIELDS = {
  /** Serialized value: marker byte + payload. */
  value: 'v',
  /** Soft expiry, Redis clock, epoch ms. */
  softExpiry: 'e',
  /** Version of the row the value was loaded from (GetOptions.version), as text. */
  version: 'ver',
  /** When the value was stored, Redis clock, epoch ms. */
  filledAt: 'ft',
  /** When the current lease was taken, Redis clock, epoch ms (a fill copies it to loadStartedAt). */
  leaseTakenAt: 'lt',
  /** When the load that produced the value started (its lease was taken), Redis clock, epoch ms. */
  loadStartedAt: 'ls',
  /** Write side: the version a write-behind write or delete tombstone carries. */
  writeVersion: 'wv',
  /** Set when a reader filled over a write-side tombstone. */
  readerFilledOverWrite: 'rf',
} as const;
