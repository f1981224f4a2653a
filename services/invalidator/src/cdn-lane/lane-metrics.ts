import { Counter, Gauge, type Registry } from '@walpurge/core';
import { changeLogGapMetrics } from '../kafka/change-log-gap-metrics.js';

export type CdnLaneMetrics = ReturnType<typeof createCdnLaneMetrics>;

/** The CDN lane's own series; an existing series is reused (one registry, several lanes). */
export function createCdnLaneMetrics(registry: Registry) {
  const registers = [registry];
  const existing = <T>(name: string): T | undefined => registry.getSingleMetric(name) as T | undefined;
  return {
    /** Gaps in the CDN topic (kafka): queued purges removed before the lane read them. */
    ...changeLogGapMetrics(registry),
    oldestAge:
      existing<Gauge<'provider'>>('walpurge_cdn_queue_oldest_age_seconds') ??
      new Gauge({
        name: 'walpurge_cdn_queue_oldest_age_seconds',
        help: 'Age of the oldest CDN purge still queued for the provider (0 when none is): how far CDN purges trail Redis. Updated while the lane is blocked, and (kafka) every 5 s from the group lag.',
        labelNames: ['provider'],
        registers,
      }),
    depth:
      existing<Gauge<'provider'>>('walpurge_cdn_queue_depth') ??
      new Gauge({
        name: 'walpurge_cdn_queue_depth',
        help: 'CDN purges queued for the provider: rows of the queue table (inline) or the consumer lag of its group on the CDN topic (kafka).',
        labelNames: ['provider'],
        registers,
      }),
    entries:
      existing<Counter<'provider' | 'outcome'>>('walpurge_cdn_lane_entries_total') ??
      new Counter({
        name: 'walpurge_cdn_lane_entries_total',
        help: 'Queued events the CDN lane finished, by provider and outcome: purged, dead_lettered (the CDN refused them for good), undecodable (a queue entry that is not a change event: nothing purged; kafka: sent to the dead-letter topic, inline: deleted and logged at error level).',
        labelNames: ['provider', 'outcome'],
        registers,
      }),
  };
}
