import { z } from 'zod';
import { positiveInt } from './common.js';

/**
 * The consistency observer (docs/consistency.md). Present: the observer runs (role `inspector`, or
 * inside role `all`); absent: nothing observes and nothing costs.
 */
export const InspectConfig = z.strictObject({
  sampleRate: z
    .number()
    .gt(0)
    .lte(1)
    .default(0.01)
    .describe(
      'Fraction of changes checked (0 < x <= 1). Each sampled change costs one Redis read per key and timescale, and a PostgreSQL read per candidate inconsistency.',
    ),
  timescalesMs: z
    .array(positiveInt)
    .min(1)
    .max(10)
    .default([1_000, 10_000, 60_000])
    .describe(
      'After each sampled commit, check its keys at commit time + each of these: an entry still older than the committed row then is inconsistent at that timescale.',
    ),
  maxPendingChecks: positiveInt
    .default(100_000)
    .describe(
      'Bound on checks scheduled or running, held in memory; beyond it new samples are dropped and counted (walpurge_inspect_dropped_total).',
    ),
  consumerGroup: z
    .string()
    .min(1)
    .default('walpurge-inspector')
    .describe(
      "transport kafka: the observer's own consumer group on the change topic. Refused when equal to kafka.consumerGroup or to a CDN lane's group (<kafka.consumerGroup>-cdn-<provider>): it would take partitions from the invalidators and lose their purges.",
    ),
  maxReportedInconsistencies: positiveInt
    .default(100)
    .describe('How many of the most recent confirmed inconsistencies the report (GET /inspect) keeps.'),
});
export type InspectConfig = z.infer<typeof InspectConfig>;
