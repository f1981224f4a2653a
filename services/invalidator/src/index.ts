export { createInvalidator, type Invalidator, type InvalidatorOptions } from './create-invalidator.js';
export type { Purger, PurgeContext } from './targets/purger.js';
export { RedisPurger, type RedisPurgerOptions } from './targets/redis/redis-purger.js';
export { groupBySlot } from './targets/redis/slot-groups.js';
export { globToRegExp } from './targets/redis/glob-regexp.js';
export { CloudflarePurger } from './targets/cdn/cloudflare.js';
export { FastlyPurger } from './targets/cdn/fastly.js';
export { CloudFrontPurger, cloudFrontPaths } from './targets/cdn/cloudfront.js';
export { HttpPurger } from './targets/cdn/generic-http.js';
export { createPurgers } from './targets/create-purgers.js';
export { createCdnMetrics, type CdnMetrics } from './targets/cdn/cdn-metrics.js';
export { deadLetterHeaders } from './kafka/dead-letter.js';
export { createInvalidatorMetrics, type InvalidatorMetrics } from './metrics.js';
export { clusterMasters } from './targets/redis/cluster-masters.js';
export { PurgeExecutor } from './pipeline/purge-executor.js';
export type { DeadLetter, DeadLetterCause, DeadLetterSink } from './dead-letter/dead-letter-sink.js';
export { PostgresDeadLetterSink, insertDeadLetter } from './dead-letter/postgres-dead-letter-sink.js';
export { KafkaDeadLetterSink } from './kafka/dead-letter-sink.js';
export { DeadLetterQueue } from './kafka/dead-letter.js';
export { deadLetterTableSql, ensureDeadLetterTable } from './dead-letter/dead-letter-table.js';
export {
  deleteDeadLetters,
  lastDeadLetterId,
  selectDeadLetters,
  type DeadLetterSelection,
  type StoredDeadLetter,
} from './dead-letter/dead-letter-rows.js';
export { matchedRuleNames } from './dead-letter/matched-rules.js';
export { isTransientPgError } from './dead-letter/transient-pg-error.js';
export { queueTableSql } from './cdn-lane/postgres-cdn-queue.js';
export { readCdnQueueStatus, type CdnQueueStatus } from './cdn-lane/cdn-queue-status.js';
