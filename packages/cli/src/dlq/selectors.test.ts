import { describe, expect, it } from 'vitest';
import { UsageError } from '../cli-io.js';
import { selects, type DeadLetterEntry } from './dead-letter-entry.js';
import { parseLimit, parseSelection, parseTime } from './selectors.js';

const now = new Date('2026-03-10T12:00:00Z');

function usageError(run: () => unknown): UsageError {
  try {
    run();
  } catch (error) {
    if (error instanceof UsageError) return error;
    throw error;
  }
  throw new Error('expected a UsageError');
}

describe('dlq selectors', () => {
  it('TIME: ISO-8601 forms and durations ago', () => {
    expect(parseTime('2026-03-01T08:30:00Z', 'since', 'dlq list', now).toISOString()).toBe(
      '2026-03-01T08:30:00.000Z',
    );
    expect(parseTime('2026-03-01T08:30:00+02:00', 'since', 'dlq list', now).toISOString()).toBe(
      '2026-03-01T06:30:00.000Z',
    );
    expect(parseTime('2026-03-01', 'since', 'dlq list', now).toISOString()).toBe('2026-03-01T00:00:00.000Z');
    expect(parseTime('2h', 'since', 'dlq list', now).toISOString()).toBe('2026-03-10T10:00:00.000Z');
    expect(parseTime('30m', 'until', 'dlq list', now).toISOString()).toBe('2026-03-10T11:30:00.000Z');
    expect(parseTime('7d', 'since', 'dlq list', now).toISOString()).toBe('2026-03-03T12:00:00.000Z');
    expect(parseTime('45s', 'since', 'dlq list', now).toISOString()).toBe('2026-03-10T11:59:15.000Z');
  });

  it.each(['yesterday', '2 hours', '2h30m', '-2h', '2026-13-45', '1700000000', ''])(
    'a bad TIME (%j) is a usage error naming the flag',
    (text) => {
      const error = usageError(() => parseSelection({ until: text }, 'dlq redrive', now));
      expect(error.message).toBe(
        `--until '${text}' is neither an ISO-8601 time (2026-01-31T12:00:00Z) nor a duration ago (30s, 15m, 2h, 7d, 1w)`,
      );
      expect(error.command).toBe('dlq redrive');
    },
  );

  it('rule, table (public by default), reason, and a since before until', () => {
    expect(
      parseSelection(
        { rule: 'items-cache', table: 'items', reason: 'cdn-rejected', since: '1d' },
        'dlq list',
        now,
      ),
    ).toEqual({
      rule: 'items-cache',
      table: 'public.items',
      cause: 'cdn-rejected',
      since: new Date('2026-03-09T12:00:00Z'),
    });
    expect(parseSelection({ table: 'app.orders' }, 'dlq list', now)).toEqual({ table: 'app.orders' });
    expect(usageError(() => parseSelection({ reason: 'oops' }, 'dlq list', now)).message).toBe(
      "--reason 'oops' is not one of purge-rejected, cdn-rejected, undecodable",
    );
    expect(usageError(() => parseSelection({ table: 'a.b.c' }, 'dlq list', now)).message).toBe(
      "--table 'a.b.c' is not 'schema.table' or 'table'",
    );
    expect(usageError(() => parseSelection({ since: '1h', until: '2h' }, 'dlq list', now)).message).toMatch(
      /^--since \(2026-03-10T11:00:00.000Z\) must be before --until/,
    );
    expect(usageError(() => parseLimit('0', 'dlq list')).message).toBe(
      "--limit must be a positive integer (got '0')",
    );
    expect(parseLimit(undefined, 'dlq list')).toBeUndefined();
  });

  it('selects entries on rule, table, cause and the time window [since, until)', () => {
    const entry: DeadLetterEntry = {
      id: '0:4',
      deadLetteredAt: '2026-03-10T11:00:00.000Z',
      cause: 'purge-rejected',
      target: 'redis',
      table: 'public.items',
      rules: ['items-cache', 'items-cdn'],
      lsn: '0/16B3748',
      errorCode: 'WP_PURGE_FAILED',
      error: 'WRONGTYPE',
      key: 'public.items:{"id":1}',
      event: '{}',
    };
    expect(selects({}, entry)).toBe(true);
    expect(selects({ rule: 'items-cdn', table: 'public.items', cause: 'purge-rejected' }, entry)).toBe(true);
    expect(selects({ rule: 'notes-cache' }, entry)).toBe(false);
    expect(selects({ table: 'public.notes' }, entry)).toBe(false);
    expect(selects({ cause: 'cdn-rejected' }, entry)).toBe(false);
    expect(selects({ since: new Date('2026-03-10T11:00:00Z') }, entry)).toBe(true);
    expect(selects({ until: new Date('2026-03-10T11:00:00Z') }, entry)).toBe(false);
    expect(selects({ since: new Date('2026-03-10T11:00:01Z') }, entry)).toBe(false);
  });
});
