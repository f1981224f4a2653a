import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  createIsolatedDatabase,
  findPostgresBinDir,
  serverMajor,
  startLocalPostgres,
  startLocalPrimaryWithStandby,
  uniqueName,
  waitFor,
  withPgClient,
  type IsolatedDatabase,
  type LocalPostgres,
  type LocalPrimaryWithStandby,
} from '@walpurge/testing';
import { runCli } from './cli.js';
import { captureIo } from './testing/capture-io.js';

const dir = mkdtempSync(join(tmpdir(), 'walpurge-validate-'));
let database: IsolatedDatabase;
/** The major version of the server under test (WALPURGE_TEST_PG_VERSION; see docs/postgresql.md). */
let major: number;

async function sql(url: string, text: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(text);
  } finally {
    await client.end();
  }
}

function configFile(name: string, body: string): string {
  const file = join(dir, name);
  writeFileSync(file, body);
  return file;
}

/** The config under test; the database URL comes from the environment like in production. */
function rules(text: string): string {
  return `database:\n  url: \${DATABASE_URL}\n  slot: walpurge_validate\n  publication: walpurge_validate\nrules:\n${text}`;
}

async function validate(file: string, url: string): Promise<{ code: number; out: string; err: string }> {
  const io = captureIo({ DATABASE_URL: url });
  const code = await runCli(['validate', '--config', file], io);
  return { code, out: io.out(), err: io.err() };
}

beforeAll(async () => {
  database = await createIsolatedDatabase(inject('services').databaseUrl, 'cli_validate');
  major = await withPgClient(database.url, serverMajor);
  await sql(
    database.url,
    `CREATE TABLE users (id int PRIMARY KEY, email text NOT NULL, name text);
     CREATE TABLE products (id int PRIMARY KEY, sku text NOT NULL);
     ALTER TABLE products REPLICA IDENTITY FULL;
     CREATE TABLE pages (id int PRIMARY KEY, slug text NOT NULL, title text, parent_id int,
                         slug_lower text GENERATED ALWAYS AS (lower(slug)) STORED);
     CREATE DOMAIN revision AS bigint CHECK (VALUE >= 0);
     CREATE TABLE versioned (id int PRIMARY KEY, rev bigint, small smallint, counter integer,
                             amount numeric, updated_at timestamptz, local_at timestamp(3), day date,
                             domain_rev revision, note text, uid uuid, at_time time,
                             rev_next bigint GENERATED ALWAYS AS (rev + 1) STORED);
     CREATE TABLE pages_full (id int PRIMARY KEY, slug text NOT NULL, title text);
     ALTER TABLE pages_full REPLICA IDENTITY FULL;
     -- PostgreSQL 15's default, revoked here so that roles without privileges (tests below) are
     -- refused the same way on 13 and 14, where everyone may create tables in public.
     REVOKE CREATE ON SCHEMA public FROM PUBLIC;`,
  );
});
afterAll(async () => {
  await database?.drop();
  rmSync(dir, { recursive: true, force: true });
});

describe('walpurge validate against the live database', () => {
  it('passes a config that matches the schema', async () => {
    const file = configFile(
      'ok.yaml',
      rules(
        '  - table: users\n    redis: { keys: ["user:{id}", "user:{new.email}"] }\n  - table: products\n    redis: { keys: ["sku:{old.sku}"] }\n',
      ),
    );
    const result = await validate(file, database.url);
    // Valid, but {new.email} is a text column: an update that leaves a long (TOASTed) email unchanged
    // does not send it under REPLICA IDENTITY DEFAULT. Said as a located warning; the check passes.
    expect(result.err).toBe(
      `${file}:7:34: warning: rules[0].redis.keys[1]: 'email' can be stored out of line (TOAST); an update that does not change a long value does not send it under REPLICA IDENTITY DEFAULT, and this entry is then not purged; declare a fallback for the rule or run ALTER TABLE public.users REPLICA IDENTITY FULL\n`,
    );
    expect(result.out).toMatch(
      new RegExp(
        `^${file}: OK \\(2 rules; live checks against 127\\.0\\.0\\.1:\\d+/${database.name} passed\\)\\n$`,
      ),
    );
    expect(result.code).toBe(0);
  });

  const cases: Array<{ name: string; rules: string; problems: string[] }> = [
    {
      name: 'unknown table',
      rules: '  - table: public.orders\n    redis: { keys: ["order:{id}"] }\n',
      problems: [
        '6:12: rules[0].table: unknown table public.orders (no such table, or not visible to this role)',
      ],
    },
    {
      name: 'unknown column in a template and in when.changed',
      rules:
        '  - table: users\n    on: [insert, update]\n    when: { changed: [emial] }\n    redis: { keys: ["user:{id}", "user_by_email:{new.emial}"] }\n',
      problems: [
        "8:23: rules[0].when.changed[0]: unknown column 'emial' in public.users",
        "9:34: rules[0].redis.keys[1]: unknown column 'emial' in public.users",
      ],
    },
    {
      name: 'old-value template with REPLICA IDENTITY DEFAULT',
      rules: '  - table: users\n    on: [update]\n    redis: { keys: ["user_by_email:{old.email}"] }\n',
      problems: [
        "8:21: rules[0].redis.keys[0]: {old.email} needs the old value of 'email', but public.users has REPLICA IDENTITY DEFAULT, which only sends the old values of id; run ALTER TABLE public.users REPLICA IDENTITY FULL",
      ],
    },
    {
      name: 'several problems at once, in file order',
      rules:
        '  - table: public.orders\n    redis: { keys: ["order:{id}"] }\n  - table: users\n    on: [update]\n    redis: { keys: ["user:{nmae}", "user_by_email:{old.email}"] }\n',
      problems: [
        '6:12: rules[0].table: unknown table public.orders (no such table, or not visible to this role)',
        "10:21: rules[1].redis.keys[0]: unknown column 'nmae' in public.users",
        "10:36: rules[1].redis.keys[1]: {old.email} needs the old value of 'email', but public.users has REPLICA IDENTITY DEFAULT, which only sends the old values of id; run ALTER TABLE public.users REPLICA IDENTITY FULL",
      ],
    },
    {
      name: 'an update needs the old value of a {col} that REPLICA IDENTITY DEFAULT does not send',
      rules:
        '  - table: pages\n    on: [update]\n    redis: { keys: ["page:{id}", "children:{parent_id}"] }\n',
      problems: [
        "8:34: rules[0].redis.keys[1]: an update also purges the entry of the old value of {parent_id}, but public.pages has REPLICA IDENTITY DEFAULT, which only sends the old values of id: when 'parent_id' changes, the old entry stays cached; run ALTER TABLE public.pages REPLICA IDENTITY FULL, or declare a fallback for the rule (purged on such updates), or set oldValues: ignore-missing on the rule if 'parent_id' never changes",
      ],
    },
    {
      name: 'a truncate the rule cannot purge',
      rules: '  - table: users\n    name: users\n    redis: { tags: ["user-{id}"] }\n',
      problems: [
        "8:21: rules[0].redis.tags[0]: rule 'users': on truncate 'user-{id}' is a tag made from a row value, and tags cannot be widened to all rows; add a fallback without row values (e.g. fallback: { redis: { patterns: ['prefix:*'] } }) that covers every entry of public.users, or remove truncate from on (a TRUNCATE of public.users then purges nothing for this rule)",
      ],
    },
    {
      name: 'namespaces: checked like keys (columns, old values, truncate)',
      rules:
        '  - table: pages\n    name: pages\n    redis: { namespaces: ["parent:{parent_id}", "site", "page:{tilte}"] }\n',
      problems: [
        "8:27: rules[0].redis.namespaces[0]: rule 'pages': on truncate 'parent:{parent_id}' is a namespace made from a row value, and namespaces cannot be widened to all rows; add a fallback without row values (e.g. fallback: { redis: { patterns: ['prefix:*'] } }) that covers every entry of public.pages, or remove truncate from on (a TRUNCATE of public.pages then purges nothing for this rule)",
        "8:27: rules[0].redis.namespaces[0]: rule 'pages': {parent_id} on delete (rendered from the deleted row) needs the old value of 'parent_id', but public.pages has REPLICA IDENTITY DEFAULT, which only sends the old values of id; run ALTER TABLE public.pages REPLICA IDENTITY FULL",
        "8:57: rules[0].redis.namespaces[2]: rule 'pages': on truncate 'page:{tilte}' is a namespace made from a row value, and namespaces cannot be widened to all rows; add a fallback without row values (e.g. fallback: { redis: { patterns: ['prefix:*'] } }) that covers every entry of public.pages, or remove truncate from on (a TRUNCATE of public.pages then purges nothing for this rule)",
        "8:57: rules[0].redis.namespaces[2]: rule 'pages': unknown column 'tilte' in public.pages",
      ],
    },
    {
      name: 'a version column that does not exist or does not order versions',
      rules: [
        '  - table: versioned',
        '    name: by-note',
        '    version: note',
        '    redis: { keys: ["v:{id}"] }',
        '  - table: versioned',
        '    version: uid',
        '    redis: { keys: ["u:{id}"] }',
        '  - table: versioned',
        '    version: at_time',
        '    redis: { keys: ["t:{id}"] }',
        '  - table: versioned',
        '    version: updated',
        '    redis: { keys: ["w:{id}"] }',
        '  - table: versioned',
        '    version: rev_next',
        '    redis: { keys: ["n:{id}"] }',
        '',
      ].join('\n'),
      problems: [
        "8:14: rules[0].version: rule 'by-note': version column 'note' of public.versioned is text, which does not order the row's versions; use a counter (smallint, integer, bigint or numeric) or a timestamp, timestamptz or date column set by every write",
        "11:14: rules[1].version: version column 'uid' of public.versioned is uuid, which does not order the row's versions; use a counter (smallint, integer, bigint or numeric) or a timestamp, timestamptz or date column set by every write",
        "14:14: rules[2].version: version column 'at_time' of public.versioned is time without time zone, which does not order the row's versions; use a counter (smallint, integer, bigint or numeric) or a timestamp, timestamptz or date column set by every write",
        "17:14: rules[3].version: version column 'updated' does not exist in public.versioned; name a column every write sets (a bigint counter, or updated_at)",
        // Not sent before PostgreSQL 18, nor on 18 by a publication yet to be created.
        "20:14: rules[4].version: version column 'rev_next' is a generated column of public.versioned, which logical replication does not send, so no change carries the committed version; use a column every write sets, or (PostgreSQL 18) publish generated columns with publish_generated_columns = stored",
      ],
    },
  ];
  it.each(cases)('$name → exit 1, every problem located', async (testCase) => {
    const file = configFile(`${testCase.name.replace(/\W+/g, '-')}.yaml`, rules(testCase.rules));
    const result = await validate(file, database.url);
    const count = testCase.problems.length;
    expect(result.err).toBe(
      `${file}: ${count} problem${count === 1 ? '' : 's'}\n${testCase.problems.map((p) => `  ${file}:${p}\n`).join('')}`,
    );
    expect(result.out).toBe('');
    expect(result.code).toBe(1);
  });

  it('a generated column (not sent before PostgreSQL 18, nor on 18 by a publication yet to be created) is refused in templates and when.changed', async () => {
    const file = configFile(
      'generated.yaml',
      rules(
        '  - table: pages\n    on: [insert, update]\n    when: { changed: [slug_lower] }\n    redis: { keys: ["page:{slug_lower}"] }\n',
      ),
    );
    const result = await validate(file, database.url);
    // 18 can publish them (publish_generated_columns, tested below); older servers never send them.
    const why =
      major >= 18
        ? `'slug_lower' is a generated column of public.pages, which logical replication does not send; publish it with ALTER PUBLICATION walpurge_validate SET (publish_generated_columns = stored), or derive the entry from the columns 'slug_lower' is computed from`
        : `'slug_lower' is a generated column of public.pages, which logical replication does not send before PostgreSQL 18 (this server is ${major}); derive the entry from the columns 'slug_lower' is computed from (or, on PostgreSQL 18, publish with publish_generated_columns = stored)`;
    expect(result.err).toBe(
      `${file}: 2 problems\n  ${file}:8:23: rules[0].when.changed[0]: ${why}\n  ${file}:9:21: rules[0].redis.keys[0]: ${why}\n`,
    );
    expect(result.code).toBe(1);
  });

  it('accepts a missing old value with a fallback (warned: purged on every update) or oldValues: ignore-missing, and warns when when.changed cannot skip anything', async () => {
    const file = configFile(
      'old-values-ok.yaml',
      rules(
        [
          '  - table: pages',
          '    on: [update]',
          '    when: { changed: [slug] }',
          '    redis: { keys: ["page_by_slug:{slug}"] }',
          '    fallback: { redis: { patterns: ["page_by_slug:*"] } }',
          '  - table: pages',
          '    on: [insert, update]',
          '    oldValues: ignore-missing',
          '    redis: { keys: ["page_title:{title}"] }',
          '  - table: pages_full',
          '    on: [update]',
          '    when: { changed: [slug] }',
          '    redis: { keys: ["full_by_slug:{slug}"] }',
          '',
        ].join('\n'),
      ),
    );
    const result = await validate(file, database.url);
    expect(result.err).toBe(
      `${file}:8:23: warning: rules[0].when.changed[0]: when.changed has no effect: public.pages has REPLICA IDENTITY DEFAULT, which only sends the old values of id, so whether 'slug' changed cannot be told and every update is purged; ALTER TABLE public.pages REPLICA IDENTITY FULL lets it skip updates\n` +
        `${file}:9:21: warning: rules[0].redis.keys[0]: an update also purges the entry of the old value of {slug}, but public.pages has REPLICA IDENTITY DEFAULT, which only sends the old values of id: every update that could change 'slug' purges the rule's fallback instead; ALTER TABLE public.pages REPLICA IDENTITY FULL purges the exact entries\n` +
        // oldValues: ignore-missing is about old values only: a long unchanged title is still unknown.
        `${file}:14:21: warning: rules[1].redis.keys[0]: 'title' can be stored out of line (TOAST); an update that does not change a long value does not send it under REPLICA IDENTITY DEFAULT, and this entry is then not purged; declare a fallback for the rule or run ALTER TABLE public.pages REPLICA IDENTITY FULL\n`,
    );
    expect(result.out).toMatch(/: OK \(3 rules; live checks against .* passed\)\n$/);
    expect(result.code).toBe(0);
  });

  it('accepts a version column of every type that orders versions, a domain over one included', async () => {
    const columns = ['rev', 'small', 'counter', 'amount', 'updated_at', 'local_at', 'day', 'domain_rev'];
    const file = configFile(
      'versions-ok.yaml',
      rules(
        columns
          .map(
            (column) =>
              `  - table: versioned\n    version: ${column}\n    redis: { keys: ["${column}:{id}"] }\n`,
          )
          .join(''),
      ),
    );
    const result = await validate(file, database.url);
    expect(result.err).toBe('');
    expect(result.out).toMatch(/: OK \(8 rules; live checks against .* passed\)\n$/);
    expect(result.code).toBe(0);
  });

  it('walpurge run refuses to start on the same problems, located the same way', async () => {
    const file = configFile(
      'run-unknown-column.yaml',
      `${rules('  - table: users\n    redis: { keys: ["user:{nmae}"] }\n')}redis:\n  url: redis://127.0.0.1:1\n`,
    );
    const io = captureIo({ DATABASE_URL: database.url });
    expect(await runCli(['run', '--config', file, '--log-level', 'silent', '--http-port', '0'], io)).toBe(1);
    expect(io.err()).toBe(
      `${file}: 1 problem\n  ${file}:7:21: rules[0].redis.keys[0]: unknown column 'nmae' in public.users\nhint: fix the rules or the table definitions, then restart\n`,
    );
  });

  it('walpurge run refuses a version column validate refuses, with the same located message', async () => {
    const file = configFile(
      'run-version-column.yaml',
      `${rules('  - table: versioned\n    version: note\n    redis: { keys: ["v:{id}"] }\n')}redis:\n  url: redis://127.0.0.1:1\n`,
    );
    const problem = `${file}:7:14: rules[0].version: version column 'note' of public.versioned is text, which does not order the row's versions; use a counter (smallint, integer, bigint or numeric) or a timestamp, timestamptz or date column set by every write`;
    expect((await validate(file, database.url)).err).toBe(`${file}: 1 problem\n  ${problem}\n`);
    const io = captureIo({ DATABASE_URL: database.url });
    expect(await runCli(['run', '--config', file, '--log-level', 'silent', '--http-port', '0'], io)).toBe(1);
    expect(io.err()).toBe(
      `${file}: 1 problem\n  ${problem}\nhint: fix the rules or the table definitions, then restart\n`,
    );
  });

  it('reports a role without REPLICATION (and what else it may not do)', async () => {
    const role = uniqueName('norepl');
    await sql(database.url, `CREATE ROLE ${role} LOGIN PASSWORD 'pw-${role}'`);
    try {
      const url = new URL(database.url);
      url.username = role;
      url.password = `pw-${role}`;
      const file = configFile('norepl.yaml', rules('  - table: users\n    redis: { keys: ["user:{id}"] }\n'));
      const result = await validate(file, url.toString());
      expect(result.err).toBe(
        `${file}: 3 problems\n` +
          `  ${file}:2:3: database.deadLetterTable: the dead-letter table walpurge_dead_letters does not exist and this role may not create it in schema "public": grant CREATE on the schema, or create it (DDL in docs/configuration.md) and grant SELECT, INSERT, DELETE\n` +
          `  ${file}:2:8: database.url: role '${role}' lacks the REPLICATION attribute (fix: ALTER ROLE ${role} REPLICATION)\n` +
          `  ${file}:4:16: database.publication: role '${role}' may not create publication 'walpurge_validate' (needs CREATE on the database)\n`,
      );
      expect(result.err).not.toContain(`pw-${role}`);
      expect(result.code).toBe(1);
    } finally {
      await sql(database.url, `DROP OWNED BY ${role}; DROP ROLE ${role}`);
    }
  });
  it('with a cdn section, also reports a CDN queue table the role may not create (the daemon would refuse to start)', async () => {
    const role = uniqueName('nocdnq');
    await sql(database.url, `CREATE ROLE ${role} LOGIN REPLICATION PASSWORD 'pw-${role}'`);
    try {
      const url = new URL(database.url);
      url.username = role;
      url.password = `pw-${role}`;
      const file = configFile(
        'nocdnq.yaml',
        `${rules('  - table: users\n    redis: { keys: ["user:{id}"] }\n')}cdn:\n  http: { endpoint: "http://127.0.0.1:1" }\n`,
      );
      const result = await validate(file, url.toString());
      expect(result.err).toContain(
        `database.cdnQueueTable: the CDN queue table walpurge_cdn_queue does not exist and this role may not create it in schema "public"`,
      );
      expect(result.code).toBe(1);
    } finally {
      await sql(database.url, `DROP OWNED BY ${role}; DROP ROLE ${role}`);
    }
  });
});

describe('walpurge validate: privileges and publications', () => {
  it('a REPLICATION role that does not own the tables may not create the publication', async () => {
    const role = uniqueName('notowner');
    await sql(
      database.url,
      `CREATE ROLE ${role} LOGIN REPLICATION PASSWORD 'pw-${role}'; GRANT CREATE ON DATABASE ${database.name} TO ${role};
       GRANT CREATE ON SCHEMA public TO ${role}`,
    );
    try {
      const url = new URL(database.url);
      url.username = role;
      url.password = `pw-${role}`;
      const file = configFile(
        'notowner.yaml',
        rules('  - table: users\n    redis: { keys: ["user:{id}"] }\n'),
      );
      const result = await validate(file, url.toString());
      expect(result.err).toBe(
        `${file}: 1 problem\n` +
          `  ${file}:4:16: database.publication: role '${role}' may not create publication 'walpurge_validate': it does not own public.users (create the publication as the owner, or grant ownership)\n`,
      );
      expect(result.code).toBe(1);
    } finally {
      await sql(database.url, `DROP OWNED BY ${role}; DROP ROLE ${role}`);
    }
  });

  it('an existing publication that lacks a rule table, as JSON', async () => {
    const publication = uniqueName('pub');
    await sql(database.url, `CREATE PUBLICATION ${publication} FOR TABLE products`);
    try {
      const file = configFile(
        'publication.yaml',
        `database:\n  url: \${DATABASE_URL}\n  publication: ${publication}\nrules:\n  - table: users\n    redis: { keys: ["user:{id}"] }\n  - table: products\n    redis: { keys: ["product:{id}"] }\n`,
      );
      const io = captureIo({ DATABASE_URL: database.url });
      expect(await runCli(['validate', '--config', file, '--json'], io)).toBe(1);
      expect(JSON.parse(io.out())).toEqual({
        ok: false,
        file,
        rules: 2,
        live: 'failed',
        problems: [
          {
            path: 'database.publication',
            line: 3,
            column: 16,
            message: `publication '${publication}' does not include public.users (fix: ALTER PUBLICATION ${publication} ADD TABLE public.users)`,
          },
        ],
        warnings: [],
      });
      expect(io.err()).toBe('');
    } finally {
      await sql(database.url, `DROP PUBLICATION ${publication}`);
    }
  });
});

describe('walpurge validate: row filters and column lists (PostgreSQL 15+)', () => {
  // The rule reads id and name: a column list dropping name leaves {name} unrenderable, one keeping
  // both (email is not read) loses nothing walpurge needs.
  // Inserts only: deletes and updates would need name's old value too, another check's problem.
  const rule =
    '  - table: users\n    on: [insert]\n    redis: { keys: ["user:{id}", "user_by_name:{name}"] }\n';
  const fix = (dropped: string): string =>
    `(fix: ALTER PUBLICATION "%s" SET TABLE "public"."users" (without WHERE${dropped}; it replaces the publication's table list, so name its other tables too), or give walpurge a publication of its own (database.publication))`;
  it.each([
    [
      'a row filter',
      'users WHERE (id > 10)',
      'publishes only the rows of public.users matching WHERE (id > 10): changes to other rows never reach walpurge, so the cache entries they affect would never be purged ' +
        fix(' or a column list'),
    ],
    [
      'a column list without a column the rules read',
      'users (id, email)',
      'publishes only the columns id, email of public.users, but walpurge reads name: changes arrive without those values, so the entries derived from them would never be purged ' +
        fix(', or with a column list that keeps name'),
    ],
    ['a column list with every column the rules read', 'users (id, name)', undefined],
  ])(
    'checks an existing publication with %s at database.publication (a syntax error before 15)',
    async (_, table, problem) => {
      const publication = uniqueName('partial');
      const create = `CREATE PUBLICATION ${publication} FOR TABLE ${table}`;
      if (major < 15) {
        await expect(sql(database.url, create)).rejects.toThrow(/syntax error/);
        return;
      }
      await sql(database.url, create);
      try {
        const file = configFile(
          'partial.yaml',
          `database:\n  url: \${DATABASE_URL}\n  publication: ${publication}\nrules:\n${rule}`,
        );
        const result = await validate(file, database.url);
        if (problem === undefined) {
          expect(result.err).not.toContain('database.publication');
          return;
        }
        expect(result.err).toBe(
          `${file}: 1 problem\n  ${file}:3:16: database.publication: publication "${publication}" ${problem.replace('%s', publication)}\n`,
        );
        expect(result.code).toBe(1);
      } finally {
        await sql(database.url, `DROP PUBLICATION ${publication}`);
      }
    },
  );
});

// A hot standby of the version under test: walpurge needs the primary on every version, even where
// PostgreSQL (16+) could decode on the standby.
describe('walpurge validate against a standby', () => {
  let pair: LocalPrimaryWithStandby | undefined;
  beforeAll(async () => {
    pair = await startLocalPrimaryWithStandby();
    await sql(pair.primary.url, 'CREATE TABLE users (id int PRIMARY KEY, email text)');
  }, 120_000);
  afterAll(async () => {
    await pair?.stop();
  });

  it('reports a standby at database.url', async () => {
    const file = configFile('standby.yaml', rules('  - table: users\n    redis: { keys: ["user:{id}"] }\n'));
    const url = pair?.standby.url ?? '';
    await withPgClient(url, (client) =>
      waitFor('the standby to replay the table', async () => {
        const { rowCount } = await client.query("SELECT 1 FROM pg_class WHERE relname = 'users'");
        return rowCount === 1;
      }),
    );
    const result = await validate(file, url);
    expect(result.err).toBe(
      `${file}: 1 problem\n  ${file}:2:8: database.url: the server at database.url is a standby (in recovery): walpurge streams from the primary only (fix: point database.url at the primary (with PostgreSQL 17 failover slots, database.failoverSlot keeps the slot on standbys for a promotion))\n`,
    );
    expect(result.code).toBe(1);
  });
});

describe('walpurge validate against a server with wal_level=replica', () => {
  let replicaServer: LocalPostgres | undefined;
  let skipReason = '';
  beforeAll(async () => {
    try {
      findPostgresBinDir();
    } catch (error) {
      skipReason = `no local PostgreSQL binaries to start a wal_level=replica server: ${(error as Error).message}`;
      return;
    }
    replicaServer = await startLocalPostgres({ settings: { wal_level: 'replica' } });
    await sql(replicaServer.url, 'CREATE TABLE users (id int PRIMARY KEY, email text)');
  }, 120_000);
  afterAll(async () => {
    await replicaServer?.stop();
  });

  it('reports the wrong wal_level at database.url', async (context) => {
    if (!replicaServer) {
      console.warn(`skipped: ${skipReason}`);
      context.skip();
      return;
    }
    const file = configFile('replica.yaml', rules('  - table: users\n    redis: { keys: ["user:{id}"] }\n'));
    const result = await validate(file, replicaServer.url);
    expect(result.err).toBe(
      `${file}: 1 problem\n  ${file}:2:8: database.url: wal_level is 'replica', walpurge needs 'logical' (ALTER SYSTEM SET wal_level = logical; then restart PostgreSQL)\n`,
    );
    expect(result.code).toBe(1);
  });
});

describe('walpurge validate on PostgreSQL 18: generated columns', () => {
  let server: LocalPostgres | undefined;
  beforeAll(async () => {
    server = await startLocalPostgres({ version: 18 });
    await sql(
      server.url,
      'CREATE TABLE pages (id int PRIMARY KEY, slug text NOT NULL, slug_lower text GENERATED ALWAYS AS (lower(slug)) STORED)',
    );
  }, 300_000);
  afterAll(async () => {
    await server?.stop();
  });

  it('accepts a template on a generated column once the publication sends it (publish_generated_columns = stored), and says how otherwise', async () => {
    const url = server?.url ?? '';
    const file = configFile(
      'pg18-generated.yaml',
      rules('  - table: pages\n    on: [insert]\n    redis: { keys: ["page:{slug_lower}"] }\n'),
    );
    await sql(url, 'CREATE PUBLICATION walpurge_validate FOR TABLE pages');
    const refused = await validate(file, url);
    expect(refused.err).toBe(
      `${file}: 1 problem\n  ${file}:8:21: rules[0].redis.keys[0]: 'slug_lower' is a generated column of public.pages, which logical replication does not send; publish it with ALTER PUBLICATION walpurge_validate SET (publish_generated_columns = stored), or derive the entry from the columns 'slug_lower' is computed from\n`,
    );
    expect(refused.code).toBe(1);
    await sql(url, 'ALTER PUBLICATION walpurge_validate SET (publish_generated_columns = stored)');
    const accepted = await validate(file, url);
    expect(accepted.err).toBe('');
    expect(accepted.out).toMatch(/: OK \(1 rule; live checks against .* passed\)\n$/);
    expect(accepted.code).toBe(0);
  });
});
