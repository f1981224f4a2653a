import { describe, expect, it } from 'vitest';
import { Rule } from '@walpurge/config';
import type { ChangeEvent } from '@walpurge/protocol';
import { compileRules } from './compile-rules.js';
import { namespaceKey, namespaceVersion, UNORDERED_NAMESPACE_VERSION } from './namespace.js';
import { emptyTargets, TargetAccumulator } from './purge-targets.js';

type RuleInput = Parameters<typeof Rule.parse>[0];
const rules = (...input: RuleInput[]) => compileRules(input.map((r) => Rule.parse(r)));

function event(op: ChangeEvent['op'], parts: Partial<ChangeEvent> = {}): ChangeEvent {
  return {
    v: 1,
    op,
    source: {
      db: 'app',
      schema: 'public',
      table: 'orders',
      lsn: '0/16B3748',
      xid: 7,
      commitTs: '2026-01-01T00:00:00.000Z',
      origin: null,
    },
    key: op === 't' ? null : { id: 1 },
    before: null,
    after: op === 'd' || op === 't' ? null : { id: 1, user_id: 42 },
    unchanged: [],
    ...parts,
  };
}

describe('namespace versions', () => {
  it('are fixed-width hex, so string order is LSN order, also above 2^53', () => {
    expect(namespaceVersion('16/B374D848')).toBe('00000016b374d848');
    expect(namespaceVersion('0/0')).toBe('0000000000000000');
    const ordered = ['0/FF', '1/0', 'FFFFF/1', 'FFFFFFFF/FFFFFFFE', 'FFFFFFFF/FFFFFFFF'];
    const versions = ordered.map(namespaceVersion);
    expect([...versions].sort()).toEqual(versions);
    expect(namespaceKey('app:', 'user:42')).toBe('app:ns:user:42');
  });
});

describe('rules with namespaces', () => {
  const set = rules({
    table: 'orders',
    redis: { keys: ['order:{id}'], namespaces: ['user:{user_id}', 'catalog'] },
  });

  it('bump the namespaces rendered from the row, literal ones as written', () => {
    expect(set.planPurges(event('c')).redis.namespaces).toEqual(['user:42', 'catalog']);
  });

  it('an update moving a row to another namespace bumps the old and the new one', () => {
    const plan = set.planPurges(event('u', { before: { id: 1, user_id: 7 } }));
    expect(plan.redis.namespaces).toEqual(['user:42', 'user:7', 'catalog']);
  });

  it('an update without the old value reports it unknown and purges the fallback, like keys', () => {
    const withFallback = rules({
      table: 'orders',
      redis: { namespaces: ['user:{user_id}'] },
      fallback: { redis: { namespaces: ['orders'] } },
    });
    const plan = withFallback.planPurges(event('u', { before: null }));
    expect(plan.redis.namespaces).toEqual(['user:42', 'orders']);
    expect(plan.unknown?.map((u) => [u.path, u.column, u.reason, u.fallbackUsed])).toEqual([
      ['rules[0].redis.namespaces[0]', 'user_id', 'old-value-unavailable', true],
    ]);
  });

  it('truncate bumps literal namespaces and reports templated ones (fallback instead)', () => {
    const plan = set.planPurges(event('t'));
    expect(plan.redis.namespaces).toEqual(['catalog']);
    expect(plan.unknown?.map((u) => [u.template, u.reason])).toEqual([['user:{user_id}', 'truncate']]);
  });
});

describe('TargetAccumulator with namespaces', () => {
  const bump = (...namespaces: string[]) => {
    const targets = emptyTargets();
    targets.redis.namespaces.push(...namespaces);
    return targets;
  };

  it('bumps each namespace once, to the highest commit LSN of the events that bump it', () => {
    const accumulator = new TargetAccumulator();
    accumulator.add(bump('a', 'b'), undefined, '1/0');
    accumulator.add(bump('a'), undefined, '0/FFFFFFFF');
    accumulator.add(bump('b'), undefined, '2/10');
    accumulator.add(bump(), undefined, 'F/0');
    const targets = accumulator.toTargets();
    expect(targets.redis.namespaces).toEqual(['a', 'b']);
    expect(targets.redis.namespaceVersions).toEqual({
      a: '0000000100000000',
      b: '0000000200000010',
    });
  });

  it('bumps unordered when any event of the batch has no commit LSN (Debezium input, re-purges)', () => {
    const accumulator = new TargetAccumulator();
    accumulator.add(bump('a', 'b'), undefined, '1/0');
    accumulator.add(bump('a'), undefined, '0/5', false);
    accumulator.add(bump('a'), undefined, '2/0');
    expect(accumulator.toTargets().redis.namespaceVersions).toEqual({
      a: UNORDERED_NAMESPACE_VERSION,
      b: '0000000100000000',
    });
  });

  it('has no versions for targets without namespaces', () => {
    const accumulator = new TargetAccumulator();
    accumulator.add(emptyTargets(), undefined, '1/0');
    expect(accumulator.toTargets().redis.namespaceVersions).toBeUndefined();
  });
});
