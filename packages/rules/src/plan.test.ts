import { describe, expect, it } from 'vitest';
import { Rule, type RuleOperation } from '@walpurge/config';
import type { ChangeEvent } from '@walpurge/protocol';
import { compileRules } from './compile-rules.js';

type RuleInput = Parameters<typeof Rule.parse>[0];
const rules = (...input: RuleInput[]) => compileRules(input.map((r) => Rule.parse(r)));

function event(op: ChangeEvent['op'], parts: Partial<ChangeEvent> & { table?: string } = {}): ChangeEvent {
  const { table = 'users', ...rest } = parts;
  const [schema, name] = table.includes('.') ? (table.split('.') as [string, string]) : ['public', table];
  return {
    v: 1,
    op,
    source: {
      db: 'app',
      schema,
      table: name,
      lsn: '0/16B3748',
      xid: 7,
      commitTs: '2026-01-01T00:00:00.000Z',
      origin: null,
    },
    key: op === 't' ? null : { id: 42 },
    before: null,
    after: op === 'c' || op === 'u' ? { id: 42, email: 'a@x', name: 'A' } : null,
    unchanged: [],
    ...rest,
  };
}

describe('matching', () => {
  const set = rules({ table: 'users', redis: { keys: ['user:{id}'] } });

  it('treats a bare table name as public.<name> and ignores other tables and schemas', () => {
    expect(set.planPurges(event('c')).redis.keys).toEqual(['user:42']);
    expect(set.planPurges(event('c', { table: 'audit.users' })).skipped).toBe(
      'no rule for table audit.users',
    );
    expect(set.planPurges(event('c', { table: 'orders' })).redis.keys).toEqual([]);
  });

  it.each<[RuleOperation, ChangeEvent['op']]>([
    ['insert', 'c'],
    ['update', 'u'],
    ['delete', 'd'],
  ])('filters by operation: on [%s] matches only op %s', (name, op) => {
    const only = rules({ table: 'public.users', on: [name], redis: { keys: ['user:{id}'] } });
    for (const other of ['c', 'u', 'd'] as const) {
      const plan = only.planPurges(event(other, { before: other === 'c' ? null : { id: 42 } }));
      expect(plan.redis.keys).toEqual(other === op ? ['user:42'] : []);
      if (other !== op) expect(plan.skipped).toContain('is not in on');
    }
  });

  it('applies every rule of a table and merges their entries without duplicates', () => {
    const two = rules(
      { table: 'users', redis: { keys: ['user:{id}', 'all-users'] } },
      { table: 'users', redis: { keys: ['user:{id}'], tags: ['u{id}'] } },
    );
    const plan = two.planPurges(event('c'));
    expect(plan.redis.keys).toEqual(['user:42', 'all-users']);
    expect(plan.redis.tags).toEqual(['u42']);
    expect(plan.rules.map((r) => r.purged)).toEqual([true, true]);
  });
});

describe('templates by operation', () => {
  const set = rules({
    table: 'users',
    redis: { keys: ['user:{id}', 'by_email:{email}', 'old_email:{old.email}', 'new_email:{new.email}'] },
    cdn: { urls: ['https://ex.com/u/{id}'], tags: ['user-{id}'], prefixes: ['https://ex.com/u/{id}/'] },
  });

  it('insert renders from the new row and skips {old.*}', () => {
    const plan = set.planPurges(event('c'));
    expect(plan.redis.keys).toEqual(['user:42', 'by_email:a@x', 'new_email:a@x']);
    expect(plan.cdn).toEqual({
      urls: ['https://ex.com/u/42'],
      tags: ['user-42'],
      prefixes: ['https://ex.com/u/42/'],
    });
    expect(plan.unknown).toBeUndefined();
  });

  it('delete renders from the old row and skips {new.*}', () => {
    const plan = set.planPurges(event('d', { before: { id: 42, email: 'gone@x', name: 'G' } }));
    expect(plan.redis.keys).toEqual(['user:42', 'by_email:gone@x', 'old_email:gone@x']);
  });

  it('delete without before takes key columns from `key`, and reports others as unknown', () => {
    const plan = set.planPurges(event('d', { key: { id: 9 }, before: null }));
    expect(plan.redis.keys).toEqual(['user:9']);
    expect(plan.unknown?.map((u) => [u.path, u.column, u.reason])).toEqual([
      ['rules[0].redis.keys[1]', 'email', 'old-value-unavailable'],
      ['rules[0].redis.keys[2]', 'email', 'old-value-unavailable'],
    ]);
  });

  it('update that changes a key column purges the old and the new entry', () => {
    const plan = set.planPurges(
      event('u', {
        key: { id: 42 },
        before: { id: 42, email: 'old@x', name: 'A' },
        after: { id: 42, email: 'new@x', name: 'A' },
      }),
    );
    expect(plan.redis.keys).toEqual([
      'user:42',
      'by_email:new@x',
      'by_email:old@x',
      'old_email:old@x',
      'new_email:new@x',
    ]);
  });

  it('update of the primary key purges both ids (old id from `key`)', () => {
    const plan = set.planPurges(
      event('u', { key: { id: 1 }, before: null, after: { id: 2, email: 'a@x', name: 'A' } }),
    );
    expect(plan.redis.keys).toContain('user:1');
    expect(plan.redis.keys).toContain('user:2');
    expect(plan.cdn.urls).toEqual(['https://ex.com/u/2', 'https://ex.com/u/1']);
  });

  it('update without old values purges the new entries and reports {old.*} and the old side of {col} as unknown', () => {
    const plan = set.planPurges(event('u', { before: null }));
    expect(plan.redis.keys).toEqual(['user:42', 'by_email:a@x', 'new_email:a@x']);
    // by_email:{email} of the old email cannot be known: reported, never silently skipped.
    expect(plan.unknown?.map((u) => [u.path, u.column, u.reason])).toEqual([
      ['rules[0].redis.keys[1]', 'email', 'old-value-unavailable'],
      ['rules[0].redis.keys[2]', 'email', 'old-value-unavailable'],
    ]);
  });

  it('update without the old value of a {col}: the fallback is purged, and the unknown value reported', () => {
    const pages = rules({
      table: 'pages',
      on: ['update'],
      redis: { keys: ['page:{id}', 'page_by_slug:{slug}'] },
      fallback: { redis: { patterns: ['page_by_slug:*'] } },
    });
    const update = event('u', {
      table: 'pages',
      key: { id: 1 },
      before: { id: 1 },
      after: { id: 1, slug: 'new' },
    });
    const plan = pages.planPurges(update);
    expect(plan.redis.keys).toEqual(['page:1', 'page_by_slug:new']);
    expect(plan.redis.patterns).toEqual(['page_by_slug:*']);
    expect(plan.unknown).toEqual([
      {
        rule: 'rules[0] public.pages',
        path: 'rules[0].redis.keys[1]',
        template: 'page_by_slug:{slug}',
        column: 'slug',
        reason: 'old-value-unavailable',
        fallbackUsed: true,
        detail:
          "the change does not carry the old value of {slug} (it needs REPLICA IDENTITY FULL, or {slug} in the replica identity), the rule's fallback is used",
      },
    ]);
    // With the whole old row (REPLICA IDENTITY FULL) both entries are exact and nothing is unknown.
    const full = pages.planPurges({ ...update, before: { id: 1, slug: 'old' } });
    expect(full.redis.keys).toEqual(['page:1', 'page_by_slug:new', 'page_by_slug:old']);
    expect(full.unknown).toBeUndefined();
    // The consistency observer checks the row's current keys only: the old slug's is marked.
    expect(full.rules[0]?.oldSideKeys).toEqual(['page_by_slug:old']);
  });

  it('oldValues: ignore-missing purges only the new entry and says so in the plan, not as unknown', () => {
    const pages = rules({
      table: 'pages',
      on: ['update'],
      oldValues: 'ignore-missing',
      redis: { keys: ['page_by_slug:{slug}'] },
    });
    const plan = pages.planPurges(
      event('u', { table: 'pages', key: { id: 1 }, before: { id: 1 }, after: { id: 1, slug: 'new' } }),
    );
    expect(plan.redis.keys).toEqual(['page_by_slug:new']);
    expect(plan.unknown).toBeUndefined();
    expect(plan.rules[0]?.ignoredOldValues).toEqual([
      { path: 'rules[0].redis.keys[0]', template: 'page_by_slug:{slug}', column: 'slug' },
    ]);
  });

  it('oldValues: ignore-missing ignores only a missing old value, never an old value that cannot be rendered', () => {
    const pages = rules({
      table: 'pages',
      on: ['update'],
      oldValues: 'ignore-missing',
      redis: { patterns: ['page:{slug}*'] },
    });
    // The old value is sent (FULL) but empty: 'page:*' would match every page, so it is not rendered.
    const plan = pages.planPurges(
      event('u', {
        table: 'pages',
        key: { id: 1 },
        before: { id: 1, slug: '' },
        after: { id: 1, slug: 'new' },
      }),
    );
    expect(plan.redis.patterns).toEqual(['page:new*']);
    expect(plan.unknown?.map((unknown) => `${unknown.column}: ${unknown.reason}`)).toEqual([
      'slug: empty-value',
    ]);
    expect(plan.rules[0]?.ignoredOldValues).toBeUndefined();
  });

  it('renders numbers, int8 strings, booleans, NULL and json predictably', () => {
    const typed = rules({ table: 't', redis: { keys: ['k:{a}:{b}:{c}:{d}:{e}'] } });
    const plan = typed.planPurges(
      event('c', { table: 't', after: { a: 1.5, b: '9007199254740993', c: true, d: null, e: { z: 1 } } }),
    );
    expect(plan.redis.keys).toEqual(['k:1.5:9007199254740993:true:null:{"z":1}']);
  });

  it('keeps literal braces', () => {
    const braces = rules({ table: 'users', redis: { keys: ['{{x}}:{id}'] } });
    expect(braces.planPurges(event('c')).redis.keys).toEqual(['{x}:42']);
  });
});

describe('when.changed', () => {
  const set = rules({ table: 'users', when: { changed: ['email', 'name'] }, redis: { keys: ['user:{id}'] } });

  it('skips an update that changed none of the listed columns', () => {
    const plan = set.planPurges(
      event('u', {
        before: { id: 42, email: 'a@x', name: 'A', bio: 'x' },
        after: { id: 42, email: 'a@x', name: 'A', bio: 'y' },
      }),
    );
    expect(plan.redis.keys).toEqual([]);
    expect(plan.skipped).toContain('update changed none of when.changed: [email, name]');
  });

  it('purges when any listed column changed', () => {
    const plan = set.planPurges(
      event('u', { before: { id: 42, email: 'a@x', name: 'A' }, after: { id: 42, email: 'a@x', name: 'B' } }),
    );
    expect(plan.redis.keys).toEqual(['user:42']);
  });

  it('purges when the old row is unavailable: unknowable counts as changed', () => {
    expect(set.planPurges(event('u', { before: null })).redis.keys).toEqual(['user:42']);
    expect(set.planPurges(event('u', { before: { id: 42 } })).redis.keys).toEqual(['user:42']);
  });

  it('an unchanged TOAST column did not change', () => {
    const plan = set.planPurges(
      event('u', { before: { id: 42, name: 'A' }, after: { id: 42, name: 'A' }, unchanged: ['email'] }),
    );
    expect(plan.redis.keys).toEqual([]);
  });

  it('compares json values structurally, not by key order', () => {
    const json = rules({ table: 'users', when: { changed: ['prefs'] }, redis: { keys: ['user:{id}'] } });
    const plan = json.planPurges(
      event('u', {
        before: { id: 42, prefs: { a: 1, b: [1, 2] } },
        after: { id: 42, prefs: { b: [1, 2], a: 1 } },
      }),
    );
    expect(plan.redis.keys).toEqual([]);
    const changed = json.planPurges(
      event('u', { before: { id: 42, prefs: { a: 1 } }, after: { id: 42, prefs: { a: '1' } } }),
    );
    expect(changed.redis.keys).toEqual(['user:42']);
  });

  it('does not filter inserts and deletes', () => {
    expect(set.planPurges(event('c')).redis.keys).toEqual(['user:42']);
    expect(set.planPurges(event('d', { before: { id: 42 } })).redis.keys).toEqual(['user:42']);
  });
});

describe('hostile values', () => {
  const set = rules({
    table: 'users',
    redis: { keys: ['user:{name}'], patterns: ['user:{name}:*'], tags: ['t:{name}'] },
    cdn: { urls: ['https://ex.com/u/{name}'], prefixes: ['https://ex.com/p/{name}'] },
  });

  it.each(['*', '?', '[a-z]', 'a\\', 'x]y', '\\*'])('escapes glob characters in patterns for %j', (name) => {
    const plan = set.planPurges(event('c', { after: { id: 1, name } }));
    expect(plan.redis.keys).toEqual([`user:${name}`]);
    expect(plan.redis.tags).toEqual([`t:${name}`]);
    const [pattern] = plan.redis.patterns;
    expect(pattern).toBe(`user:${name.replace(/[*?[\]\\]/g, (c) => `\\${c}`)}:*`);
  });

  it('an empty value never widens a pattern or prefix to its siblings: reported, fallback purged instead', () => {
    const widening = rules({
      table: 'posts',
      name: 'posts',
      redis: { keys: ['post:{slug}'], patterns: ['{slug}*', 'post:{slug}?x', 'post:{slug}:*', '{slug}[ab]'] },
      cdn: { prefixes: ['https://ex.com/p/{slug}', 'https://ex.com/p/{slug}/'] },
      fallback: { redis: { keys: ['posts:index'] } },
    });
    const plan = widening.planPurges(event('c', { table: 'posts', after: { id: 1, slug: '' } }));
    expect(plan.redis.keys).toEqual(['post:', 'posts:index']);
    // `post::*` and `…/p//` address only this row's entries: kept.
    expect(plan.redis.patterns).toEqual(['post::*']);
    expect(plan.cdn.prefixes).toEqual(['https://ex.com/p//']);
    expect(plan.unknown?.map((u) => [u.path, u.reason, u.fallbackUsed])).toEqual([
      ['rules[0].redis.patterns[0]', 'empty-value', true],
      ['rules[0].redis.patterns[1]', 'empty-value', true],
      ['rules[0].redis.patterns[3]', 'empty-value', true],
      ['rules[0].cdn.prefixes[0]', 'empty-value', true],
    ]);
    const filled = widening.planPurges(event('c', { table: 'posts', after: { id: 1, slug: 'a*' } }));
    expect(filled.redis.patterns).toEqual(['a\\**', 'post:a\\*?x', 'post:a\\*:*', 'a\\*[ab]']);
    expect(filled.unknown).toBeUndefined();
  });

  it('says in words why an empty value was not rendered', () => {
    const widening = rules({
      table: 'posts',
      redis: { patterns: ['post:{slug}*'] },
      fallback: { redis: { keys: ['posts:index'] } },
    });
    const plan = widening.planPurges(event('c', { table: 'posts', after: { id: 1, slug: '' } }));
    expect(plan.unknown?.[0]?.reason).toBe('empty-value');
    expect(plan.unknown?.[0]?.detail).toBe(
      "value of {slug} is empty; an empty value could widen the purge, the rule's fallback is used",
    );
    const without = rules({ table: 'posts', redis: { patterns: ['post:{slug}*'] } });
    expect(
      without.planPurges(event('c', { table: 'posts', after: { id: 1, slug: '' } })).unknown?.[0]?.detail,
    ).toBe(
      'value of {slug} is empty; an empty value could widen the purge, the rule has no fallback: not purged',
    );
  });

  it('percent-encodes values in CDN URLs and prefixes so they cannot address other paths', () => {
    const plan = set.planPurges(event('c', { after: { id: 1, name: '../admin?x=1#' } }));
    expect(plan.cdn.urls).toEqual(['https://ex.com/u/..%2Fadmin%3Fx%3D1%23']);
    expect(plan.cdn.prefixes).toEqual(['https://ex.com/p/..%2Fadmin%3Fx%3D1%23']);
  });

  // Everything but RFC 3986's unreserved characters is encoded: `*` is CloudFront's wildcard,
  // `!'()` are reserved sub-delimiters some caches treat specially, `%` must not form an escape.
  it.each([
    ['a*', 'a%2A'],
    ['*', '%2A'],
    ["it's (x)!", 'it%27s%20%28x%29%21'],
    ['a?b#c&d=e', 'a%3Fb%23c%26d%3De'],
    ['100%', '100%25'],
    ['%2e%2e', '%252e%252e'],
    ['a/b\\c', 'a%2Fb%5Cc'],
    ['tab\tnew\nline', 'tab%09new%0Aline'],
    ['ü €', '%C3%BC%20%E2%82%AC'],
    ['\ud800x', '%EF%BF%BDx'],
    ['~a-b_c.d', '~a-b_c.d'],
  ])('encodes CDN value %j as %j', (name, encoded) => {
    const plan = set.planPurges(event('c', { after: { id: 1, name } }));
    expect(plan.cdn.urls).toEqual([`https://ex.com/u/${encoded}`]);
    expect(plan.cdn.prefixes).toEqual([`https://ex.com/p/${encoded}`]);
  });

  it('a value that forms a "." or ".." path segment is not rendered: URL parsers would resolve it to a parent path', () => {
    const dots = rules({
      table: 'posts',
      cdn: {
        urls: ['https://ex.com/p/{slug}', 'https://ex.com/p/{slug}/x', 'https://ex.com/p/{slug}.json'],
        prefixes: ['https://ex.com/p/{slug}/', 'https://ex.com/p/.{slug}/', 'https://ex.com/p/?q={slug}'],
      },
      fallback: { cdn: { tags: ['posts'] } },
    });
    for (const slug of ['.', '..']) {
      const plan = dots.planPurges(event('c', { table: 'posts', after: { id: 1, slug } }));
      expect(plan.cdn.urls).toEqual([`https://ex.com/p/${slug}.json`]);
      // `.{slug}` with `.` is `..`: refused too; a query value is not a path segment.
      expect(plan.cdn.prefixes).toEqual(
        slug === '.' ? ['https://ex.com/p/?q=.'] : ['https://ex.com/p/.../', 'https://ex.com/p/?q=..'],
      );
      expect(plan.cdn.tags).toEqual(['posts']);
      expect(plan.unknown?.every((u) => u.reason === 'dot-segment' && u.fallbackUsed)).toBe(true);
      expect(plan.unknown?.[0]?.detail).toContain('value of {slug} makes the URL path segment');
    }
    const fine = dots.planPurges(event('c', { table: 'posts', after: { id: 1, slug: '...' } }));
    expect(fine.unknown).toBeUndefined();
  });
});

describe('unchanged TOAST values', () => {
  const withFallback = rules({
    table: 'docs',
    redis: { keys: ['doc:{id}', 'doc_by_body:{body}'] },
    fallback: { redis: { patterns: ['doc_by_body:*'] }, cdn: { tags: ['docs'] } },
  });

  it('uses the old value when the event carries it (REPLICA IDENTITY FULL)', () => {
    const plan = withFallback.planPurges(
      event('u', { table: 'docs', before: { id: 1, body: 'big' }, after: { id: 1 }, unchanged: ['body'] }),
    );
    expect(plan.redis.keys).toEqual(['doc:1', 'doc_by_body:big']);
    expect(plan.unknown).toBeUndefined();
  });

  it('purges the fallback and reports the value as unknown, never rendering "undefined"', () => {
    const plan = withFallback.planPurges(
      event('u', { table: 'docs', key: { id: 1 }, before: null, after: { id: 1 }, unchanged: ['body'] }),
    );
    expect(plan.redis.keys).toEqual(['doc:1']);
    expect(plan.redis.patterns).toEqual(['doc_by_body:*']);
    expect(plan.cdn.tags).toEqual(['docs']);
    expect(plan.unknown).toEqual([
      {
        rule: 'rules[0] public.docs',
        path: 'rules[0].redis.keys[1]',
        template: 'doc_by_body:{body}',
        column: 'body',
        reason: 'unchanged-toast',
        fallbackUsed: true,
        detail:
          "the change does not carry the value of {body} (an unchanged TOASTed value: REPLICA IDENTITY FULL sends it), the rule's fallback is used",
      },
    ]);
    expect(JSON.stringify(plan)).not.toContain('undefined');
  });

  it('without a fallback still reports the unknown value', () => {
    const plain = rules({ table: 'docs', redis: { keys: ['doc_by_body:{body}'] } });
    const plan = plain.planPurges(event('u', { table: 'docs', after: { id: 1 }, unchanged: ['body'] }));
    expect(plan.redis.keys).toEqual([]);
    expect(plan.unknown?.[0]).toMatchObject({ column: 'body', fallbackUsed: false });
  });
});

describe('truncate', () => {
  const set = rules(
    {
      table: 'users',
      redis: {
        keys: ['user:{id}', 'users:count', '{email}'],
        patterns: ['user:{id}:*', 'lists:*'],
        tags: ['all-users', 'user-{id}'],
      },
      cdn: { urls: ['https://ex.com/users', 'https://ex.com/u/{id}'], tags: ['users'] },
    },
    { table: 'users', on: ['insert'], redis: { keys: ['never'] } },
  );

  it('purges literal entries, widens templated keys/patterns with a literal prefix, reports the rest', () => {
    const plan = set.planPurges(event('t'));
    expect(plan.redis.keys).toEqual(['users:count']);
    expect(plan.redis.patterns).toEqual(['user:*', 'user:*:*', 'lists:*']);
    expect(plan.redis.tags).toEqual(['all-users']);
    expect(plan.cdn.urls).toEqual(['https://ex.com/users']);
    expect(plan.cdn.tags).toEqual(['users']);
    // A CDN url with a literal scheme://host/ is widened to a prefix purge of that literal start.
    expect(plan.cdn.prefixes).toEqual(['https://ex.com/u/']);
    expect(plan.unknown?.map((u) => [u.template, u.reason])).toEqual([
      ['{email}', 'truncate'],
      ['user-{id}', 'truncate'],
    ]);
    expect(plan.rules[1]).toMatchObject({ purged: false });
  });

  it('widens CDN urls and prefixes only to a literal URL directory below the host (never the site, never a partial segment), and only when the CDN purges prefixes', () => {
    const cdn = (prefixPurge: boolean) =>
      compileRules(
        [
          Rule.parse({
            table: 'users',
            cdn: {
              urls: ['https://ex.com/search?q={name}', 'https://{host}/x', 'https://ex.com{path}'],
              prefixes: ['https://ex.com/teams/{team}/'],
            },
          }),
        ],
        { cdnPrefixPurge: prefixPurge },
      ).planPurges(event('t'));
    expect(cdn(true).cdn.prefixes).toEqual(['https://ex.com/teams/']);
    expect(cdn(true).unknown?.map((u) => u.template)).toEqual([
      'https://ex.com/search?q={name}',
      'https://{host}/x',
      'https://ex.com{path}',
    ]);
    expect(cdn(false).cdn.prefixes).toEqual([]);
    expect(cdn(false).unknown).toHaveLength(4);
  });

  it('escapes glob characters of a literal key prefix when widening it', () => {
    const odd = rules({ table: 'users', redis: { keys: ['a*b:{id}'] } });
    expect(odd.planPurges(event('t')).redis.patterns).toEqual(['a\\*b:*']);
  });

  it('purges the fallback for what it cannot render', () => {
    const fb = rules({
      table: 'users',
      redis: { tags: ['user-{id}'] },
      fallback: { redis: { tags: ['users'] } },
    });
    const plan = fb.planPurges(event('t'));
    expect(plan.redis.tags).toEqual(['users']);
    expect(plan.unknown?.[0]).toMatchObject({ reason: 'truncate', fallbackUsed: true });
  });
});

describe('compileRules', () => {
  it('lists the watched tables and names rules', () => {
    const set = rules({ table: 'users' }, { table: 'billing.invoices', name: 'invoices' });
    expect(set.tables()).toEqual(['public.users', 'billing.invoices']);
    expect(set.rules.map((r) => r.name)).toEqual(['rules[0] public.users', 'invoices']);
  });

  it('says why an event purges nothing', () => {
    const set = rules({ table: 'users', redis: { keys: ['x:{old.id}'] } });
    expect(set.planPurges(event('c')).skipped).toBe('the matching rules derive no entries from this change');
  });
});
