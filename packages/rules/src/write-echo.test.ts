import { describe, expect, it } from 'vitest';
import type { ChangeEvent } from '@walpurge/protocol';
import { FlusherConfig } from '@walpurge/config';
import { TargetAccumulator, emptyTargets, countTargets, type PurgeTargets } from './purge-targets.js';
import { WRITE_BEHIND_ORIGIN, isWriteBehindOrigin, writeEchoVersion } from './write-echo.js';

const echo = { origin: 'walpurge_write_behind', versionColumn: '_walpurge_version' };

function event(
  op: ChangeEvent['op'],
  origin: string | null,
  row: Record<string, unknown> | null = { id: 1, _walpurge_version: '1700000000000001' },
): ChangeEvent {
  return {
    v: 1,
    op,
    source: { db: 'app', schema: 'public', table: 'items', lsn: '0/1', xid: 1, commitTs: '', origin },
    key: { id: 1 },
    before: op === 'd' ? row : null,
    after: op === 'd' || op === 't' ? null : row,
    unchanged: [],
  };
}

function targets(keys: string[], patterns: string[] = []): PurgeTargets {
  const t = emptyTargets();
  t.redis.keys.push(...keys);
  t.redis.patterns.push(...patterns);
  return t;
}

describe('write-behind echo', () => {
  it("recognises the flusher's origin and its replicas' names, nothing else", () => {
    expect(isWriteBehindOrigin('walpurge_write_behind', echo.origin)).toBe(true);
    expect(isWriteBehindOrigin('walpurge_write_behind_2', echo.origin)).toBe(true);
    expect(isWriteBehindOrigin('walpurge_write_behind_x', echo.origin)).toBe(false);
    expect(isWriteBehindOrigin('walpurge_write_behind2', echo.origin)).toBe(false);
    expect(isWriteBehindOrigin('pg_16384', echo.origin)).toBe(false);
    expect(isWriteBehindOrigin(null, echo.origin)).toBe(false);
    expect(isWriteBehindOrigin('walpurge_write_behind_', echo.origin)).toBe(false);
  });

  it('defaults to the default flusher.replicationOrigin', () => {
    expect(WRITE_BEHIND_ORIGIN).toBe(
      FlusherConfig.parse({ queueRedisUrl: 'redis://127.0.0.1:1' }).replicationOrigin,
    );
    expect(isWriteBehindOrigin('walpurge_write_behind_12')).toBe(true);
    expect(isWriteBehindOrigin('custom_origin_2')).toBe(false);
    expect(isWriteBehindOrigin('custom_origin_2', 'custom_origin')).toBe(true);
  });

  it("reads the committed version of the flusher's inserts and updates", () => {
    expect(writeEchoVersion(event('u', 'walpurge_write_behind'), echo)).toBe('1700000000000001');
    expect(writeEchoVersion(event('c', 'walpurge_write_behind_3'), echo)).toBe('1700000000000001');
    expect(
      writeEchoVersion(event('u', 'walpurge_write_behind', { id: 1, _walpurge_version: 42 }), echo),
    ).toBe('42');
  });

  it("a delete's echo carries the deleted row's version (REPLICA IDENTITY FULL), so the delete marker and newer writes are kept", () => {
    // One above the deleted row's version: an entry holding exactly that version holds the deleted value.
    expect(writeEchoVersion(event('d', 'walpurge_write_behind'), echo)).toBe('1700000000000002');
    expect(writeEchoVersion(event('d', 'other_origin'), echo)).toBeUndefined();
  });

  it('is not an echo (purge as usual) for other origins, truncates, or an unknown version', () => {
    expect(writeEchoVersion(event('u', null), echo)).toBeUndefined();
    expect(writeEchoVersion(event('u', 'other_origin'), echo)).toBeUndefined();
    expect(writeEchoVersion(event('t', 'walpurge_write_behind', null), echo)).toBeUndefined();
    // A delete without REPLICA IDENTITY FULL carries only the key.
    expect(writeEchoVersion(event('d', 'walpurge_write_behind', { id: 1 }), echo)).toBeUndefined();
    expect(
      writeEchoVersion(event('u', 'walpurge_write_behind', { id: 1, _walpurge_version: 'x' }), echo),
    ).toBeUndefined();
  });
});

describe('TargetAccumulator with echo keys', () => {
  it("guards an echo's exact keys with the highest version of the batch; patterns stay unconditional", () => {
    const acc = new TargetAccumulator();
    acc.add(targets(['item:1', 'list:1'], ['item:1:*']), '20');
    acc.add(targets(['item:1'], ['item:1:*']), '10');
    const out = acc.toTargets();
    expect(out.redis.keys).toEqual([]);
    expect(out.redis.patterns).toEqual(['item:1:*']);
    expect(out.redis.versioned).toEqual([
      { key: 'item:1', version: '20' },
      { key: 'list:1', version: '20' },
    ]);
    expect(acc.added).toBe(5);
    expect(acc.unique).toBe(3);
    expect(countTargets(out)).toBe(3);
  });

  it('a key another event of the batch purges unconditionally is purged unconditionally', () => {
    const acc = new TargetAccumulator();
    acc.add(targets(['item:1', 'list:1']), '20');
    acc.add(targets(['item:1']));
    const out = acc.toTargets();
    expect(out.redis.keys).toEqual(['item:1']);
    expect(out.redis.versioned).toEqual([{ key: 'list:1', version: '20' }]);
  });

  it('without echo events the targets have no versioned keys at all', () => {
    const acc = new TargetAccumulator();
    acc.add(targets(['item:1']));
    expect(acc.toTargets().redis).not.toHaveProperty('versioned');
  });
});
