import { Counter, type Registry } from '@walpurge/core';

export type ChangeLogGapMetrics = ReturnType<typeof changeLogGapMetrics>;

/**
 * Gaps in a topic the invalidator consumes (the change topic, the CDN topic): one pair of series
 * for both, labelled by topic. An existing series is reused (the CDN lanes share the registry).
 */
export function changeLogGapMetrics(registry: Registry) {
  const registers = [registry];
  const existing = <T>(name: string): T | undefined => registry.getSingleMetric(name) as T | undefined;
  return {
    changeLogGaps:
      existing<Counter<'topic' | 'reason'>>('walpurge_invalidator_change_log_gaps_total') ??
      new Counter({
        name: 'walpurge_invalidator_change_log_gaps_total',
        help: 'Gaps found in a topic the invalidator consumes (the change topic, the CDN topic): changes that left it before the group purged them. reason="removed": expired by retention or deleted (counted in walpurge_invalidator_lost_changes_total); reason="rewound": the topic was re-created or truncated below the group\'s position; reason="replaced": the topic has a new ID (deleted and re-created), one per partition held (counts unknown).',
        labelNames: ['topic', 'reason'],
        registers,
      }),
    lostChanges:
      existing<Counter<'topic'>>('walpurge_invalidator_lost_changes_total') ??
      new Counter({
        name: 'walpurge_invalidator_lost_changes_total',
        help: 'Changes removed from a topic the invalidator consumes (retention, deleted records) before the group purged them: their cache entries may be stale.',
        labelNames: ['topic'],
        registers,
      }),
  };
}
