// The check lives beside the write client, which runs it too (an accepted write is only as durable
// as the queue Redis); the flusher keeps importing it from here.
export { assertQueueRedisSafe, inspectQueueRedis, type QueueRedisSafety } from '@walpurge/write-behind';
