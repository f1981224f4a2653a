import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createIsolatedDatabase, uniqueName, type IsolatedDatabase } from '@walpurge/testing';
import { runCli } from './cli.js';
import { captureIo } from './testing/capture-io.js';

const dir = mkdtempSync(join(tmpdir(), 'walpurge-validate-partitions-'));
let database: IsolatedDatabase;

async function sql(text: string): Promise<void> {
  const client = new pg.Client({ connectionString: database.url });
  await client.connect();
  try {
    await client.query(text);
  } finally {
    await client.end();
  }
}

interface Problem {
  path: string;
  message: string;
}

/** `walpurge validate --json` on a config with these database settings and rules. */
async function validate(
  databaseYaml: string,
  rulesYaml: string,
): Promise<{ code: number; problems: Problem[]; warnings: Problem[] }> {
  const file = join(dir, `${uniqueName('config')}.yaml`);
  writeFileSync(file, `database:\n  url: \${DATABASE_URL}\n${databaseYaml}rules:\n${rulesYaml}`);
  const io = captureIo({ DATABASE_URL: database.url });
  const code = await runCli(['validate', '--config', file, '--json'], io);
  const output = JSON.parse(io.out()) as { problems?: Problem[]; warnings?: Problem[] };
  const brief = (list: Problem[] = []): Problem[] =>
    list.map((problem) => ({ path: problem.path, message: problem.message }));
  return { code, problems: brief(output.problems), warnings: brief(output.warnings) };
}

beforeAll(async () => {
  database = await createIsolatedDatabase(inject('services').databaseUrl, 'cli_validate_partitions');
  await sql(`
    CREATE TABLE measurements (id int, k int, v text, PRIMARY KEY (id, k)) PARTITION BY RANGE (k);
    CREATE TABLE measurements_a PARTITION OF measurements FOR VALUES FROM (0) TO (10);
    CREATE TABLE measurements_b PARTITION OF measurements FOR VALUES FROM (10) TO (20);
    CREATE TABLE users (id int PRIMARY KEY);
    CREATE TABLE products (id int PRIMARY KEY);`);
});
afterAll(async () => {
  await database?.drop();
  rmSync(dir, { recursive: true, force: true });
});

describe('walpurge validate: partitioned tables and published rule tables', () => {
  it('accepts an existing publication that has the partitioned table as a member', async () => {
    const publication = uniqueName('pub');
    await sql(`CREATE PUBLICATION ${publication} FOR TABLE measurements`);
    const result = await validate(
      `  publication: ${publication}\n`,
      '  - table: measurements\n    redis: { keys: ["m:{id}:{k}"] }\n',
    );
    expect(result).toEqual({ code: 0, problems: [], warnings: [] });
  });

  it('warns that publish_via_partition_root = true loses TRUNCATE of a single partition', async () => {
    const publication = uniqueName('pub');
    await sql(
      `CREATE PUBLICATION ${publication} FOR TABLE measurements WITH (publish_via_partition_root = true)`,
    );
    const result = await validate(
      `  publication: ${publication}\n`,
      '  - table: measurements\n    redis: { keys: ["m:{id}:{k}"] }\n',
    );
    expect(result).toEqual({
      code: 0,
      problems: [],
      warnings: [
        {
          path: 'database.publication',
          message: `publication '${publication}' has publish_via_partition_root = true: PostgreSQL does not publish a TRUNCATE of a single partition, so caches derived from a truncated partition will not be purged (fix: ALTER PUBLICATION ${publication} SET (publish_via_partition_root = false))`,
        },
      ],
    });
  });

  it('refuses a rule written for a partition, naming the partitioned table', async () => {
    const result = await validate(
      `  publication: ${uniqueName('pub')}\n`,
      '  - table: measurements_b\n    redis: { keys: ["m:{id}:{k}"] }\n',
    );
    expect(result).toMatchObject({
      code: 1,
      problems: [
        {
          path: 'rules[0].table',
          message:
            "public.measurements_b is a partition of public.measurements: walpurge reports a partition's changes under public.measurements, so this rule would never match (fix: table: public.measurements)",
        },
      ],
    });
  });

  it('refuses old-value rules when the partitioned table is FULL but its partitions are not', async () => {
    await sql('ALTER TABLE measurements REPLICA IDENTITY FULL');
    try {
      const result = await validate(
        `  publication: ${uniqueName('pub')}\n`,
        '  - table: measurements\n    redis: { keys: ["m:{old.v}"] }\n',
      );
      expect(result.code).toBe(1);
      expect(result.problems).toEqual(
        ['measurements_a', 'measurements_b'].map((leaf) => ({
          path: 'rules[0].table',
          message: `public.measurements has REPLICA IDENTITY FULL but its partition public.${leaf} does not (a partitioned table's setting reaches no partition): old values of its rows carry only id, k (fix: ALTER TABLE public.${leaf} REPLICA IDENTITY FULL)`,
        })),
      );
    } finally {
      await sql('ALTER TABLE measurements REPLICA IDENTITY DEFAULT');
    }
  });

  it('refuses a rule whose table database.tables leaves out of the publication walpurge creates', async () => {
    const result = await validate(
      `  publication: ${uniqueName('pub')}\n  tables: [users]\n`,
      '  - table: users\n    redis: { keys: ["u:{id}"] }\n  - table: products\n    redis: { keys: ["p:{id}"] }\n',
    );
    expect(result).toMatchObject({
      code: 1,
      problems: [
        {
          path: 'rules[1].table',
          message:
            'public.products is not in database.tables, so the publication walpurge creates will not carry its changes and this rule would never match (fix: add public.products to database.tables)',
        },
      ],
    });
  });
});
