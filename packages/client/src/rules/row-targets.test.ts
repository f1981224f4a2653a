import { describe, expect, it } from 'vitest';
import { WalpurgeConfig } from '@walpurge/config';
import { ErrorCode } from '@walpurge/core';
import { compileRules } from '@walpurge/rules';
import { rowTargetsFromRules } from './row-targets.js';

const { rules } = WalpurgeConfig.parse({
  database: { url: 'postgres://localhost/app' },
  rules: [
    {
      table: 'public.users',
      redis: {
        keys: [
          'user:{id}',
          'user_by_email:{old.email}',
          'user_by_email:{new.email}',
          'team:{team_id}:members',
        ],
        patterns: ['user:{id}:*'],
        tags: ['user-{id}', 'team-{team_id}'],
        namespaces: ['team:{team_id}', 'directory'],
      },
      cdn: { tags: ['user-{id}'], urls: ['https://example.com/users/{id}'] },
    },
    { table: 'users', redis: { tags: ['users'] }, cdn: { tags: ['users', 'user-{id}'] } },
    { table: 'posts', cdn: { tags: ['post-{id}'] } },
  ],
});

describe('rowTargetsFromRules', () => {
  const targets = rowTargetsFromRules(rules);
  const row = { id: 42, email: 'ada@example.com', team_id: 7 };

  it('renders what the invalidator renders for the row, skipping {old.*}, without duplicates', () => {
    expect(targets.redisKeys('users', row)).toEqual([
      'user:42',
      'user_by_email:ada@example.com',
      'team:7:members',
    ]);
    expect(targets.redisTags('public.users', row)).toEqual(['user-42', 'team-7', 'users']);
    expect(targets.redisNamespaces('users', row)).toEqual(['team:7', 'directory']);
    expect(targets.cdnTags('users', row)).toEqual(['user-42', 'users']);
    expect(targets.cdnTags('other', row)).toEqual([]);
  });

  it("agrees with the invalidator's plan for an insert of the same row", () => {
    const compiled = compileRules(rules);
    const plan = compiled.planPurges({
      v: 1,
      op: 'c',
      source: {
        db: 'app',
        schema: 'public',
        table: 'users',
        lsn: '0/1',
        xid: 1,
        commitTs: '2026-01-01T00:00:00Z',
        origin: null,
      },
      key: { id: 42 },
      before: null,
      after: row,
      unchanged: [],
    });
    const fromCompiled = rowTargetsFromRules(compiled);
    expect(fromCompiled.redisKeys('users', row)).toEqual(plan.redis.keys);
    expect(fromCompiled.redisTags('users', row)).toEqual(plan.redis.tags);
    expect(fromCompiled.redisNamespaces('users', row)).toEqual(plan.redis.namespaces);
    expect(fromCompiled.cdnTags('users', row)).toEqual(plan.cdn.tags);
  });

  it('picks the keys holding the row itself, and refuses templates no rule lists', () => {
    expect(targets.redisKeys('users', row, ['user:{id}'])).toEqual(['user:42']);
    expect(() => targets.checkKeyTemplates('users', ['user:{id}', 'usr:{id}'])).toThrow(
      expect.objectContaining({
        code: ErrorCode.ConfigInvalid,
        message: '"usr:{id}" is not among the redis.keys of any rule for public.users',
      }),
    );
  });

  it('refuses a row that lacks a column a template needs (its entry would never be purged)', () => {
    expect(() => targets.cdnTags('posts', { title: 'x' })).toThrow(
      expect.objectContaining({
        code: ErrorCode.WriteInvalid,
        message: expect.stringContaining('rules[2].cdn.tags[0] (post-{id}) needs column id'),
      }),
    );
  });
});
