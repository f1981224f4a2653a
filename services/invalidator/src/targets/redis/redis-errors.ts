import { errorMessage, ErrorCode, WalpurgeError } from '@walpurge/core';

/**
 * Replies that say the command can never succeed as sent: retrying would stall the partition
 * forever, so they reject the event for good (isolated, dead-lettered, counted). Anything else the
 * server answers (LOADING, BUSY, TRYAGAIN, CLUSTERDOWN, MASTERDOWN, OOM, READONLY during a
 * failover, a full client table …) passes with time.
 */
const PERMANENT_REPLY =
  /^(NOPERM|WRONGTYPE|NOSCRIPT)\b|^ERR (unknown command|wrong number of arguments|syntax error)/;

/**
 * A Redis failure as a WalpurgeError with a decided retriability. Errors without a server reply
 * (connection refused or closed, timeouts, a cluster without its slot map) are RedisUnavailable and
 * retriable. WalpurgeErrors (already classified) pass unchanged.
 */
export function classifyRedisError(error: unknown): WalpurgeError {
  if (error instanceof WalpurgeError) return error;
  const message = errorMessage(error);
  if (isReply(error) && PERMANENT_REPLY.test(message)) {
    return new WalpurgeError(ErrorCode.PurgeFailed, `cache Redis refused the purge: ${message}`, {
      retriable: false,
      cause: error,
      hint: /^NOPERM/.test(message)
        ? "the Redis user's ACL must allow SCAN, SSCAN, UNLINK, SREM, SMOVE, EVAL on the key prefix"
        : 'a command walpurge needs is disabled or renamed on the cache Redis',
    });
  }
  return new WalpurgeError(ErrorCode.RedisUnavailable, `cache Redis: ${message}`, {
    retriable: true,
    cause: error,
  });
}

/** ioredis' ReplyError (the server answered with an error): its name, not its class, is public. */
function isReply(error: unknown): boolean {
  return error instanceof Error && error.name === 'ReplyError';
}
