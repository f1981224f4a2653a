import { compareVersions } from '@walpurge/rules';
import type { Row } from '@walpurge/protocol';
import type { EntrySnapshot } from './entry-reader.js';
import type { RowNow } from './row-reader.js';

export type Writer = 'sdk' | 'other';
export type Cause = 'purge-missing' | 'stale-fill' | 'other-writer';

/** The version a cache entry holds, and who wrote it. */
export type EntryVersion =
  | { kind: 'absent' }
  | { kind: 'versioned'; writer: Writer; version: string; filledAt: number | null }
  | { kind: 'unversioned'; writer: Writer; reason: string };

/** The change checked: its version (`after`'s, or for a delete the deleted row's, when known). */
export interface ChangeVersion {
  deleted: boolean;
  version: string | undefined;
}

export type FirstLook =
  { verdict: 'consistent' } | { verdict: 'candidate' } | { verdict: 'unverifiable'; reason: string };
export type Confirmed =
  { verdict: 'consistent' } | { verdict: 'inconsistent' } | { verdict: 'unverifiable'; reason: string };

/** A row value as version text: the listener sends int8/numeric as strings, int2/int4 as numbers. */
export function versionText(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'bigint') return String(value);
  return undefined;
}

export function changeVersionOf(op: 'c' | 'u' | 'd', row: Row | null, versionColumn: string): ChangeVersion {
  return { deleted: op === 'd', version: versionText(row?.[versionColumn]) };
}

export interface EntryLayout {
  /** The rule's `version` column (also the field a plain JSON value carries it in). */
  versionColumn: string;
  /** The rule's version is the flusher's versionColumn on a write-behind table: `wv` counts too. */
  writeVersionCounts: boolean;
}

/** Reads the version out of what Redis holds: `ver` (or `wv`) of an SDK hash, a JSON value's field. */
export function entryVersionOf(entry: EntrySnapshot, layout: EntryLayout): EntryVersion {
  switch (entry.kind) {
    case 'absent':
      return entry;
    case 'hash': {
      // `wv` is the write side's version; once a reader filled over it (`rf`), the value came from
      // the database at a version `wv` does not tell, and counting `wv` could call it current.
      const writeVersion =
        layout.writeVersionCounts && !entry.readerFilledOverWrite ? entry.writeVersion : null;
      const version = entry.version ?? writeVersion;
      return version === null
        ? { kind: 'unversioned', writer: 'sdk', reason: 'entry-has-no-version' }
        : { kind: 'versioned', writer: 'sdk', version, filledAt: entry.filledAt };
    }
    case 'string': {
      let parsed: unknown;
      try {
        parsed = JSON.parse(entry.value);
      } catch {
        return { kind: 'unversioned', writer: 'other', reason: 'plain-value-not-json' };
      }
      const version =
        parsed !== null && typeof parsed === 'object'
          ? versionText((parsed as Record<string, unknown>)[layout.versionColumn])
          : undefined;
      return version === undefined
        ? { kind: 'unversioned', writer: 'other', reason: 'plain-value-without-version' }
        : { kind: 'versioned', writer: 'other', version, filledAt: null };
    }
    case 'other':
      return { kind: 'unversioned', writer: 'other', reason: `redis-type-${entry.type}` };
  }
}

/**
 * Before any database read: absent or at least as new as the change is consistent; older (or, for
 * a delete, present and not newer than the deleted row) is a candidate for the confirm step.
 */
export function firstLook(entry: EntryVersion, change: ChangeVersion): FirstLook {
  if (entry.kind === 'absent') return { verdict: 'consistent' };
  if (entry.kind === 'unversioned') return { verdict: 'unverifiable', reason: entry.reason };
  if (change.deleted) {
    // An entry newer than the deleted row is a later write (or write-behind's delete marker).
    if (change.version === undefined) return { verdict: 'candidate' };
    const order = compareVersions(entry.version, change.version);
    if (order === undefined) return { verdict: 'unverifiable', reason: 'versions-not-comparable' };
    return order > 0 ? { verdict: 'consistent' } : { verdict: 'candidate' };
  }
  if (change.version === undefined) return { verdict: 'unverifiable', reason: 'change-has-no-version' };
  const order = compareVersions(entry.version, change.version);
  if (order === undefined) return { verdict: 'unverifiable', reason: 'versions-not-comparable' };
  return order >= 0 ? { verdict: 'consistent' } : { verdict: 'candidate' };
}

/**
 * The confirm step (as Meta's Polaris does): the row as PostgreSQL holds it now, and the entry read
 * again after it. Inconsistent only when the database still says the change (or a later one) is
 * committed and the entry has not caught up since; a row older than the change (versions not
 * monotonic) or gone since cannot tell.
 */
export function confirm(change: ChangeVersion, row: RowNow, entryNow: EntryVersion): Confirmed {
  if (change.deleted) {
    if (!row.gone) return { verdict: 'unverifiable', reason: 'row-reinserted' };
  } else {
    if (row.gone) return { verdict: 'unverifiable', reason: 'row-deleted-since' };
    if (row.version === null) return { verdict: 'unverifiable', reason: 'row-version-null' };
    const order = compareVersions(row.version, change.version ?? '');
    if (order === undefined) return { verdict: 'unverifiable', reason: 'versions-not-comparable' };
    if (order < 0) return { verdict: 'unverifiable', reason: 'version-not-monotonic' };
  }
  const again = firstLook(entryNow, change);
  if (again.verdict === 'consistent') return again;
  if (again.verdict === 'unverifiable') return again;
  return { verdict: 'inconsistent' };
}

/**
 * Why a confirmed entry is stale: another writer's value; or an SDK entry stored before the commit
 * (no purge removed it), or stored after it (a load that started before the commit filled after the
 * purge). filledAt is Redis's clock, commit time PostgreSQL's: skew between them blurs the two.
 */
export function causeOf(writer: Writer, filledAt: number | null, commitMs: number): Cause {
  if (writer === 'other') return 'other-writer';
  return filledAt !== null && filledAt >= commitMs ? 'stale-fill' : 'purge-missing';
}
