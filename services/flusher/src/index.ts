export { createFlusher, requireFlusherConfig, type FlusherOptions, type FlushOutcome } from './flusher.js';
export { WRITE_BEHIND_ORIGIN, isWriteBehindOrigin, setupReplicationOrigin } from './origin.js';
export {
  listFailedWrites,
  redriveFailedWrites,
  type FailedWrite,
  type FailedWritesOptions,
} from './failed-writes.js';
export { inspectQueueRedis, assertQueueRedisSafe, type QueueRedisSafety } from './queue-redis-safety.js';
export { isPermanentWriteError } from './sql-errors.js';
