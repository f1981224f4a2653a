/**
 * How often a long-running consumer re-reads the partition leaders even without an error (kafkajs's
 * `metadataMaxAge`; its default is 5 minutes). kafkajs sends no leader epoch, so a broker that
 * restarted and has not caught up answers for partitions it no longer leads: no error, an old high
 * watermark, nothing to fetch. The consumer then looks caught up while changes wait on the real
 * leader until its metadata is refreshed (seen as a 30 s+ stall of the invalidator after a
 * group-coordinator restart, on three brokers under load).
 */
export const CONSUMER_METADATA_MAX_AGE_MS = 10_000;
