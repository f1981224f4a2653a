import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from '../cli.js';
import { captureIo } from '../testing/capture-io.js';

// One config that uses every rule feature; each case below shows what `explain` prints for it.
const dir = mkdtempSync(join(tmpdir(), 'walpurge-explain-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const config = join(dir, 'walpurge.yaml');
writeFileSync(
  config,
  `redis:
  url: redis://127.0.0.1:1
  keyPrefix: 'app:'
rules:
  - name: user
    table: public.users
    on: [insert, update, delete]
    when: { changed: [email, name] }
    redis:
      keys: ['user:{id}', 'user_by_email:{old.email}', 'user_by_email:{new.email}']
      patterns: ['user:{id}:*', 'search:{name}:*']
      tags: ['user-{id}']
    cdn:
      urls: ['https://example.com/users/{name}']
      tags: ['user-{id}']
      prefixes: ['https://example.com/teams/{team}/']
    fallback:
      redis: { patterns: ['user:*'] }
  - table: audit
    on: [truncate]
    redis: { keys: ['audit:all', 'audit:{id}'], patterns: ['audit-page:{id}:*'] }
    cdn: { tags: ['audit-{id}'], urls: ['https://example.com/audit/{id}'] }
    fallback:
      cdn: { tags: ['audit'] }
  - table: events
    on: [truncate]
    redis: { tags: ['event-{id}'] }
  - table: pages
    on: [update]
    oldValues: ignore-missing
    redis: { keys: ['page_by_slug:{slug}'] }
  - table: posts
    on: [update]
    redis: { keys: ['post_by_slug:{slug}'] }
  - table: links
    on: [update]
    cdn: { urls: ['{page_url}'] }
  - table: carts
    on: [insert, update, delete]
    redis: { namespaces: ['user:{user_id}', 'orders'] }
    fallback:
      redis: { namespaces: ['users'] }
  - name: product
    table: products
    version: updated_at
    redis: { keys: ['product:{id}'] }
  - table: products
    on: [delete]
    redis: { keys: ['product_gone:{id}'] }
`,
);

const PREFIX_NOTE =
  "(redis.keyPrefix 'app:' is prepended to every key and pattern; tag sets live at 'app:tag:<tag>')\n";

async function explain(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const io = captureIo();
  const code = await runCli(['explain', '--config', config, ...args], io);
  return { code, out: io.out(), err: io.err() };
}

describe('walpurge explain', () => {
  it('insert: keys, {new.*} values, patterns with glob-escaped values, tags, CDN urls/tags/prefixes', async () => {
    const row = { id: 7, email: 'a@x', name: 'A*[b]?\\', team: 't 1/2' };
    const result = await explain('--table', 'users', '--op', 'c', '--after', JSON.stringify(row));
    expect(result.err).toBe('');
    expect(result.code).toBe(0);
    // {old.email} has no row on an insert, so only the new entry; the hostile name is escaped in
    // the pattern (never a wider match), percent-encoded in URLs, verbatim in exact keys.
    expect(result.out).toBe(
      'public.users insert\n' +
        '  rule user: applies\n' +
        '\n' +
        'redis keys:       user:7\n' +
        '                  user_by_email:a@x\n' +
        'redis patterns:   user:7:*\n' +
        '                  search:A\\*\\[b\\]\\?\\\\:*\n' +
        'redis tags:       user-7\n' +
        'cdn urls:         https://example.com/users/A%2A%5Bb%5D%3F%5C\n' +
        'cdn tags:         user-7\n' +
        'cdn prefixes:     https://example.com/teams/t%201%2F2/\n' +
        PREFIX_NOTE,
    );
  });

  it('update of a key column purges the entries of the old and the new value', async () => {
    const before = { id: 7, email: 'a@x', name: 'Ann', team: 'red' };
    const after = { id: 7, email: 'b@x', name: 'Bob', team: 'blue' };
    const result = await explain(
      '--table',
      'public.users',
      '--op',
      'update',
      '--before',
      JSON.stringify(before),
      '--after',
      JSON.stringify(after),
    );
    expect(result.code).toBe(0);
    expect(result.out).toBe(
      'public.users update\n' +
        '  rule user: applies\n' +
        '\n' +
        'redis keys:       user:7\n' +
        '                  user_by_email:a@x\n' +
        '                  user_by_email:b@x\n' +
        'redis patterns:   user:7:*\n' +
        '                  search:Bob:*\n' +
        '                  search:Ann:*\n' +
        'redis tags:       user-7\n' +
        'cdn urls:         https://example.com/users/Bob\n' +
        '                  https://example.com/users/Ann\n' +
        'cdn tags:         user-7\n' +
        'cdn prefixes:     https://example.com/teams/blue/\n' +
        '                  https://example.com/teams/red/\n' +
        PREFIX_NOTE,
    );
  });

  it('when.changed: an update touching none of the listed columns purges nothing', async () => {
    const row = { id: 7, email: 'a@x', name: 'Ann', bio: 'old' };
    const result = await explain(
      '--table',
      'users',
      '--op',
      'u',
      '--before',
      JSON.stringify(row),
      '--after',
      JSON.stringify({ ...row, bio: 'new' }),
    );
    expect(result.code).toBe(0);
    expect(result.out).toBe(
      'public.users update\n' +
        '  rule user: skipped (update changed none of when.changed: [email, name])\n' +
        '\n' +
        'nothing to purge: user: update changed none of when.changed: [email, name]\n',
    );
  });

  it('delete with only the replica-identity key: what it cannot render is reported and the fallback purged', async () => {
    const result = await explain('--table', 'users', '--op', 'd', '--key', '{"id":7}');
    expect(result.code).toBe(0);
    expect(result.out).toBe(
      'public.users delete\n' +
        '  rule user: applies\n' +
        '\n' +
        'redis keys:       user:7\n' +
        'redis patterns:   user:7:*\n' +
        '                  user:*\n' +
        'redis tags:       user-7\n' +
        'cdn tags:         user-7\n' +
        'unknown value: rules[0].redis.keys[1] "user_by_email:{old.email}" {email}: old value not sent (needs REPLICA IDENTITY FULL) -> fallback purged\n' +
        'unknown value: rules[0].redis.patterns[1] "search:{name}:*" {name}: old value not sent (needs REPLICA IDENTITY FULL) -> fallback purged\n' +
        'unknown value: rules[0].cdn.urls[0] "https://example.com/users/{name}" {name}: old value not sent (needs REPLICA IDENTITY FULL) -> fallback purged\n' +
        'unknown value: rules[0].cdn.prefixes[0] "https://example.com/teams/{team}/" {team}: old value not sent (needs REPLICA IDENTITY FULL) -> fallback purged\n' +
        PREFIX_NOTE,
    );
  });

  it('an unchanged TOASTed column is an unknown value, never a silently skipped entry', async () => {
    const before = { id: 7, email: 'a@x', team: 'red' };
    const after = { id: 7, email: 'b@x', team: 'red' };
    const result = await explain(
      '--table',
      'users',
      '--op',
      'u',
      '--before',
      JSON.stringify(before),
      '--after',
      JSON.stringify(after),
      '--unchanged',
      'name',
    );
    expect(result.code).toBe(0);
    expect(result.out).toContain(
      'unknown value: rules[0].redis.patterns[1] "search:{name}:*" {name}: unchanged TOASTed column, value not sent -> fallback purged\n',
    );
    expect(result.out).toContain('redis patterns:   user:7:*\n                  user:*\n');
  });

  it('truncate widens templated keys and patterns to their literal prefix, CDN urls to a prefix, and purges the fallback for tags', async () => {
    const result = await explain('--table', 'audit', '--op', 'truncate');
    expect(result.code).toBe(0);
    expect(result.out).toBe(
      'public.audit truncate\n' +
        '  rule rules[1] public.audit: applies\n' +
        '\n' +
        'redis keys:       audit:all\n' +
        'redis patterns:   audit:*\n' +
        '                  audit-page:*:*\n' +
        'cdn tags:         audit\n' +
        'cdn prefixes:     https://example.com/audit/\n' +
        'unknown value: rules[1].cdn.tags[0] "audit-{id}": truncate has no rows -> fallback purged\n' +
        PREFIX_NOTE,
    );
  });

  it('a rule a truncate cannot purge is shown as refused by validate and start, with the fix', async () => {
    const result = await explain('--table', 'events', '--op', 'truncate');
    expect(result.code).toBe(0);
    expect(result.out).toBe(
      'public.events truncate\n' +
        '  rule rules[2] public.events: applies\n' +
        '\n' +
        'unknown value: rules[2].redis.tags[0] "event-{id}": truncate has no rows -> not purged\n' +
        'nothing to purge: the matching rules derive no entries from this change\n' +
        "refused by walpurge validate and at start: rules[2].redis.tags[0]: on truncate 'event-{id}' is a tag made from a row value, and tags cannot be widened to all rows; add a fallback without row values (e.g. fallback: { redis: { patterns: ['prefix:*'] } }) that covers every entry of public.events, or remove truncate from on (a TRUNCATE of public.events then purges nothing for this rule)\n",
    );
  });

  it('a CDN url whose host comes from a row value is shown as refused by validate and start', async () => {
    const row = '{"id":1,"page_url":"https://example.com/a"}';
    const result = await explain('--table', 'links', '--op', 'u', '--before', row, '--after', row);
    expect(result.code).toBe(0);
    expect(result.out).toContain('  https%3A%2F%2Fexample.com%2Fa\n');
    expect(result.out).toContain(
      "refused by walpurge validate and at start: rules[5].cdn.urls[0]: '{page_url}' must start with a literal http:// or https:// scheme and host followed by '/'",
    );
  });

  it('an update without the old value of {slug}: reported as unknown, or shown as ignored under oldValues: ignore-missing', async () => {
    const args = ['--op', 'u', '--before', '{"id":1}', '--after', '{"id":1,"slug":"new"}'];
    const posts = await explain('--table', 'posts', ...args);
    expect(posts.out).toContain('redis keys:       post_by_slug:new\n');
    expect(posts.out).toContain(
      'unknown value: rules[4].redis.keys[0] "post_by_slug:{slug}" {slug}: old value not sent (needs REPLICA IDENTITY FULL) -> not purged\n',
    );
    const pages = await explain('--table', 'pages', ...args);
    expect(pages.out).toContain('redis keys:       page_by_slug:new\n');
    expect(pages.out).toContain(
      'old entry not purged: rules[3].redis.keys[0] "page_by_slug:{slug}" {slug}: old value not sent -> ignored (oldValues: ignore-missing)\n',
    );
    expect(pages.out).not.toContain('unknown value');
  });

  it('on: an operation the rule does not list purges nothing, and says why', async () => {
    const result = await explain('--table', 'audit', '--op', 'd', '--before', '{"id":1}');
    expect(result.code).toBe(0);
    expect(result.out).toBe(
      'public.audit delete\n' +
        '  rule rules[1] public.audit: skipped (delete is not in on: [truncate])\n' +
        '\n' +
        'nothing to purge: rules[1] public.audit: delete is not in on: [truncate]\n',
    );
  });

  it('namespaces: the versions an update bumps, old and new, and where they live', async () => {
    const result = await explain(
      '--table',
      'carts',
      '--op',
      'u',
      '--before',
      JSON.stringify({ id: 1, user_id: 7 }),
      '--after',
      JSON.stringify({ id: 1, user_id: 8 }),
    );
    expect(result.code).toBe(0);
    expect(result.out).toBe(
      'public.carts update\n' +
        '  rule rules[6] public.carts: applies\n' +
        '\n' +
        'redis namespaces: user:8\n' +
        '                  user:7\n' +
        '                  orders\n' +
        "(each namespace's version at 'app:ns:<namespace>' is set to the change's commit LSN unless it is already newer; entries stored under the old version become unreachable)\n",
    );
  });

  it('namespaces: a namespace needing an old value the change lacks is unknown, and the fallback bumped', async () => {
    const result = await explain('--table', 'carts', '--op', 'd', '--key', JSON.stringify({ id: 1 }));
    expect(result.code).toBe(0);
    expect(result.out).toContain('redis namespaces: orders\n                  users\n');
    expect(result.out).toContain(
      'unknown value: rules[6].redis.namespaces[0] "user:{user_id}" {user_id}: old value not sent (needs REPLICA IDENTITY FULL) -> fallback purged',
    );
  });

  it("a rule's version column is shown under it; a rule without one shows none", async () => {
    const result = await explain('--table', 'products', '--op', 'c', '--after', '{"id":3}');
    expect(result.code).toBe(0);
    expect(result.out).toBe(
      'public.products insert\n' +
        '  rule product: applies\n' +
        '    version column: updated_at (the consistency observer compares cached entries with it)\n' +
        '  rule rules[8] public.products: skipped (insert is not in on: [delete])\n' +
        '\n' +
        'redis keys:       product:3\n' +
        PREFIX_NOTE,
    );
    const json = await explain('--table', 'products', '--op', 'c', '--after', '{"id":3}', '--json');
    expect(JSON.parse(json.out)).toMatchObject({ versionColumns: { product: 'updated_at' } });
  });

  it('a table without rules', async () => {
    const result = await explain('--table', 'orders', '--op', 'c', '--after', '{"id":1}');
    expect(result.code).toBe(0);
    expect(result.out).toBe(
      'public.orders insert\n  no rule watches this table\n\nnothing to purge: no rule for table public.orders\n',
    );
  });

  it('--json prints the event and the plan for scripts', async () => {
    const result = await explain(
      '--table',
      'users',
      '--op',
      'c',
      '--after',
      '{"id":7,"email":"a@x"}',
      '--json',
    );
    expect(result.code).toBe(0);
    const parsed = JSON.parse(result.out) as {
      event: { op: string; source: { schema: string; table: string } };
      plan: { redis: { keys: string[] }; rules: Array<{ rule: string; purged: boolean }> };
    };
    expect(parsed.event.op).toBe('c');
    expect(parsed.event.source).toMatchObject({ schema: 'public', table: 'users' });
    expect(parsed.plan.redis.keys).toEqual(['user:7', 'user_by_email:a@x']);
    expect(parsed.plan.rules).toEqual([{ rule: 'user', index: 0, purged: true }]);
    expect(parsed).not.toHaveProperty('versionColumns'); // no rule of users declares one
  });

  const usage: Array<{ name: string; args: string[]; message: string }> = [
    { name: 'missing --table', args: ['--op', 'c'], message: '--table is required' },
    {
      name: 'bad --op',
      args: ['--table', 'users', '--op', 'x', '--after', '{}'],
      message: "--op must be one of c, u, d, t (or insert, update, delete, truncate), got 'x'",
    },
    {
      name: 'update without --after',
      args: ['--table', 'users', '--op', 'u'],
      message: '--after is required for updates',
    },
    {
      name: 'delete without a row',
      args: ['--table', 'users', '--op', 'd'],
      message: '--before (or --key) is required for deletes',
    },
    {
      name: '--after not JSON',
      args: ['--table', 'users', '--op', 'c', '--after', 'nope'],
      message: `--after is not valid JSON: Unexpected token 'o', "nope" is not valid JSON`,
    },
    {
      name: '--before not an object',
      args: ['--table', 'users', '--op', 'd', '--before', '[1]'],
      message: `--before must be a JSON object like '{"id":42}'`,
    },
  ];
  it.each(usage)('usage error: $name → exit 2', async ({ args, message }) => {
    const result = await explain(...args);
    expect(result.code).toBe(2);
    expect(result.err).toBe(`walpurge explain: ${message}\nRun 'walpurge explain --help' for usage.\n`);
    expect(result.out).toBe('');
  });
});

describe('explain and TLS files', () => {
  const RULES = "rules:\n  - table: users\n    redis: { keys: ['user:{id}'] }\n";
  // The files may exist only where walpurge runs: explain must neither read nor refuse them.
  const sections = [
    {
      name: 'redis.tls',
      yaml: 'redis:\n  url: rediss://127.0.0.1:1\n  tls:\n    ca: certs/not-mounted-here.pem\n',
    },
    {
      name: 'kafka.ssl and the token module',
      yaml:
        "transport: kafka\nkafka:\n  brokers: ['127.0.0.1:1']\n  ssl:\n    ca: certs/not-mounted-here.pem\n" +
        '  sasl:\n    mechanism: oauthbearer\n    tokenProvider: not-mounted-here.mjs\nredis:\n  url: redis://127.0.0.1:1\n',
    },
  ];
  it.each(sections)('does not read the files of $name', async ({ name, yaml }) => {
    const file = join(dir, `with-tls-${name.replace(/\W+/g, '-')}.yaml`);
    writeFileSync(file, yaml + RULES);
    const io = captureIo({});
    const code = await runCli(
      ['explain', '--config', file, '--table', 'users', '--op', 'c', '--after', '{"id":1}'],
      io,
    );
    expect(io.err()).toBe('');
    expect(code).toBe(0);
    expect(io.out()).toContain('user:1');
  });
});
