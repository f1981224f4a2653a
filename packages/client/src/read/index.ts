export { createCacheClient, type CacheClient, type Loader } from './cache-client.js';
export type { CacheClientOptions, GetOptions, LeaseOptions } from './options.js';
export type { L1Options } from './l1-cache.js';
export type { CacheRedis } from './cache-redis.js';
export type { TagPruningOptions } from './tag-pruner.js';
export {
  jsonSerializer,
  PayloadCodec,
  PayloadMarker,
  type Serializer,
  type CompressionOptions,
  type CompressionAlgorithm,
} from './serializer.js';
export { shouldRefreshEarly, jitteredTtlMs } from './xfetch.js';
export { entryKey, tagSetKey } from './keys.js';
export { ENTRY_FIELDS } from './entry-layout.js';
export { rowVersionText, type RowVersion } from './row-version.js';
export type { ClientMetrics } from './metrics.js';
export {
  type WarmEntry,
  type WarmOptions,
  type WarmProgress,
  type WarmReport,
  type WarmFailure,
  describeWarmFailure,
} from './warm.js';
export type { RefreshOptions } from './refresher.js';
export type { LeasedLoadOutcome } from './leased-load.js';
export { progressBarReporter, formatProgressLine, type ProgressBarOptions } from './progress-bar.js';
