import { errorMessage, ErrorCode, WalpurgeError } from '@walpurge/core';

/**
 * Replies that say this event's command can never succeed as sent (a tag key of another type, a
 * malformed command): retrying would stall the partition forever, so they reject the event for
 * good (isolated, dead-lettered, counted).
 */
const PERMANENT_REPLY = /^WRONGTYPE\b|^ERR (wrong number of arguments|syntax error)/;

/**
 * Replies that refuse every purge alike until an operator changes the server (the ACL, a renamed
 * or disabled command). Dead-lettering would empty the pipeline into the dead-letter store while
 * offsets and the slot move on and every cache stays stale; they are retried instead (the batch
 * waits, the purge-failure metric and alert fire, each retry logs this hint), like a provider whose
 * credentials a CDN refuses.
 */
const TARGET_WIDE_REPLY = /^(NOPERM|NOSCRIPT)\b|^ERR unknown command/;

/**
 * A Redis failure as a WalpurgeError with a decided retriability. Errors without a server reply
 * (connection refused or closed, timeouts, a cluster without its slot map) are RedisUnavailable and
 * retriable; so is anything else the server answers (LOADING, BUSY, TRYAGAIN, CLUSTERDOWN,
 * MASTERDOWN, OOM, READONLY during a failover, a full client table …), which passes with time.
 * WalpurgeErrors (already classified) pass unchanged.
 */
export function classifyRedisError(error: unknown): WalpurgeError {
  if (error instanceof WalpurgeError) return error;
  const message = errorMessage(error);
  if (isReply(error) && PERMANENT_REPLY.test(message)) {
    return new WalpurgeError(ErrorCode.PurgeFailed, `cache Redis refused the purge: ${message}`, {
      retriable: false,
      cause: error,
    });
  }
  if (isReply(error) && TARGET_WIDE_REPLY.test(message)) {
    return new WalpurgeError(ErrorCode.PurgeFailed, `cache Redis refuses every purge: ${message}`, {
      retriable: true,
      cause: error,
      hint: /^NOPERM/.test(message)
        ? "the Redis user's ACL must allow SCAN, SSCAN, UNLINK, SREM, SMOVE, EVAL, GET, SET on the key prefix; purges wait until it does"
        : 'a command walpurge needs is disabled or renamed on the cache Redis; purges wait until it is back',
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
