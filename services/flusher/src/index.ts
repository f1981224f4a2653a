export { createFlusher, requireFlusherConfig, type FlusherOptions, type FlushOutcome } from './flusher.js';
export { setupReplicationOrigin } from './origin.js';
// The origin matcher lives with the rest of the echo layout in @walpurge/rules.
export { WRITE_BEHIND_ORIGIN, isWriteBehindOrigin } from '@walpurge/write-behind';
export {
  listFailedWrites,
  redriveFailedWrites,
  type FailedWrite,
  type FailedWritesOptions,
} from './failed-writes.js';
export { inspectQueueRedis, assertQueueRedisSafe, type QueueRedisSafety } from './queue-redis-safety.js';
export { isPermanentWriteError } from './sql-errors.js';
