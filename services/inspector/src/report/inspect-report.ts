import { z } from 'zod';

const Writer = z.enum(['sdk', 'other']);
/**
 * Time to consistency of one writer's sampled keys: percentiles of the `count` keys seen consistent
 * within the polling horizon (the last timescale); `neverConsistent` keys were not, and are left out
 * of the percentiles (their time is unknown, not the horizon). `skippedLate` keys were consistent,
 * but their change reached the observer more than 1 s after its commit: their time is the
 * observer's lag, so unknown too, and left out.
 */
const Percentiles = z.object({
  count: z.number(),
  p50: z.number(),
  p99: z.number(),
  p999: z.number(),
  neverConsistent: z.number(),
  // Defaults: `walpurge inspect --from` may read an older observer's report, which lacks them.
  skippedLate: z.number().default(0),
});

/** The observer's report: GET /inspect, `walpurge inspect --json` (docs/consistency.md). */
export const InspectReport = z.object({
  /** Role 'all' only: why the observer is not running (its start failed); the purges go on. */
  notRunning: z.string().optional(),
  since: z.string(),
  until: z.string(),
  changesSeen: z.number(),
  changesSampled: z.number(),
  dropped: z.number(),
  checks: z.array(
    z.object({
      timescale: z.string(),
      writer: Writer,
      checked: z.number(),
      consistent: z.number(),
      /** Of the consistent checks, those that found no entry (purged, or never cached). */
      absent: z.number(),
      inconsistent: z.number(),
      unverifiable: z.number(),
      nines: z.number().nullable(),
      atLeast: z.boolean(),
    }),
  ),
  timeToConsistencyMs: z.object({ sdk: Percentiles, other: Percentiles }),
  /** The observer's own lag: commit to receiving each sampled change (not `inspect --once`). */
  arrivalLagMs: z
    .object({ count: z.number(), p50: z.number(), p99: z.number() })
    .default({ count: 0, p50: 0, p99: 0 }),
  unchecked: z.record(z.string(), z.number()),
  inconsistencies: z.array(
    z.object({
      at: z.string(),
      key: z.string(),
      rule: z.string(),
      lsn: z.string(),
      commitTs: z.string(),
      timescale: z.string(),
      writer: Writer,
      entryVersion: z.string(),
      rowVersion: z.string().nullable(),
      cause: z.enum(['purge-missing', 'stale-fill', 'other-writer']),
    }),
  ),
});
export type InspectReport = z.infer<typeof InspectReport>;
export type Inconsistency = InspectReport['inconsistencies'][number];

/**
 * -log10(inconsistent / checked): 6 means one in a million. With none found, the most the sample
 * can show is log10(checked), reported as a lower bound (atLeast).
 */
export function nines(checked: number, inconsistent: number): { nines: number | null; atLeast: boolean } {
  if (checked === 0) return { nines: null, atLeast: false };
  if (inconsistent === 0) return { nines: round(Math.log10(checked)), atLeast: true };
  return { nines: round(-Math.log10(inconsistent / checked)), atLeast: false };
}

// + 0: no -0 in the report (all checks inconsistent gives -log10(1)).
const round = (value: number): number => Math.round(value * 100) / 100 + 0;
