import { describe, expect, it } from 'vitest';
import { ErrorCode, isRetriable, WalpurgeError } from '@walpurge/core';
import { classifyRedisError } from './redis-errors.js';

function reply(message: string): Error {
  const error = new Error(message);
  error.name = 'ReplyError';
  return error;
}

describe('classifyRedisError', () => {
  it.each([
    'WRONGTYPE Operation against a key holding the wrong kind of value',
    "ERR wrong number of arguments for 'unlink' command",
  ])('a reply that cannot succeed for this event is permanent: %s', (message) => {
    const error = classifyRedisError(reply(message));
    expect(isRetriable(error)).toBe(false);
    expect(error.code).toBe(ErrorCode.PurgeFailed);
    expect(error.cause).toBeInstanceOf(Error);
  });

  // Refusals of every purge alike: dead-lettering them would empty the pipeline while caches stay
  // stale, so the batch waits (alerted) until the operator fixes the server.
  it.each([
    'NOPERM User walpurge has no permissions to run the unlink command',
    "ERR unknown command 'UNLINK', with args beginning with: ",
    'NOSCRIPT No matching script.',
  ])('a reply that refuses every purge alike is retried, with a hint: %s', (message) => {
    const error = classifyRedisError(reply(message));
    expect(isRetriable(error)).toBe(true);
    expect(error.code).toBe(ErrorCode.PurgeFailed);
    expect(error.hint).toMatch(/purges wait/);
  });

  it.each([
    'LOADING Redis is loading the dataset in memory',
    'BUSY Redis is busy running a script.',
    'TRYAGAIN Multiple keys request during rehashing of slot',
    'CLUSTERDOWN The cluster is down',
    "OOM command not allowed when used memory > 'maxmemory'.",
    'ERR max number of clients reached',
  ])('a reply that passes with time is retriable: %s', (message) => {
    expect(isRetriable(classifyRedisError(reply(message)))).toBe(true);
  });

  it('a connection error (no reply) is RedisUnavailable and retriable', () => {
    const error = classifyRedisError(new Error('Connection is closed.'));
    expect(error.code).toBe(ErrorCode.RedisUnavailable);
    expect(isRetriable(error)).toBe(true);
  });

  it('an already classified error passes unchanged', () => {
    const original = new WalpurgeError(ErrorCode.PurgeFailed, 'tag set holds another type', {
      retriable: false,
    });
    expect(classifyRedisError(original)).toBe(original);
  });
});
