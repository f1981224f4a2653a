export * from './layout.js';
export * from './pending-entry.js';
export * from './job-options.js';
export * from './sql.js';
export * from './row-check.js';
export * from './durability.js';
export * from './queue-redis-safety.js';
export {
  CACHE_PURGE_REFUSED_SCRIPT,
  CACHE_PUT_SCRIPT,
  REFUSED_MARKER_TTL_MS,
  ECHO_PURGE_SCRIPT,
  MARK_FAILED_SCRIPT,
  SETTLE_SCRIPT,
} from './scripts.js';
// CDC echo layout shared with the flusher, which reaches @walpurge/rules through this package.
export { WRITE_BEHIND_ORIGIN, isWriteBehindOrigin } from '@walpurge/rules';
export { WriteScript, stringArrayReply } from './lua.js';
export { CacheWriter, type CacheWriterOptions, type EntryLifetime } from './cache-writer.js';
export * from './write-client.js';
