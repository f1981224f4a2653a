import type { GetOptions } from './options.js';

/**
 * What one load through the lease path did, for callers that load without a reader waiting on the
 * value (warm(), refresh-on-invalidate):
 * - `filled`: the key was missing (or stale and free), this caller took the lease, loaded and stored;
 * - `present`: a fresh value is already cached; nothing was loaded;
 * - `leased_elsewhere`: another caller holds the lease and is loading it; nothing was loaded;
 * - `rejected`: loaded, but the key was purged or written while loading, so the fill was refused
 *   (the newer state in Redis wins).
 */
export type LeasedLoadOutcome = 'filled' | 'present' | 'leased_elsewhere' | 'rejected';

export type LeasedLoad = (
  key: string,
  loader: () => Promise<unknown>,
  opts: GetOptions,
) => Promise<LeasedLoadOutcome>;

/** Metric label of an outcome (`walpurge_client_warm_entries_total`, `walpurge_client_refreshes_total`). */
export function outcomeLabel(outcome: LeasedLoadOutcome, filledLabel: string): string {
  switch (outcome) {
    case 'filled':
      return filledLabel;
    case 'present':
      return 'skipped_present';
    case 'leased_elsewhere':
      return 'skipped_leased';
    case 'rejected':
      return 'rejected';
  }
}
