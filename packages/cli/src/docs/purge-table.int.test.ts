import { readFileSync } from 'node:fs';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { formatPath, Rule, type ConfigProblem } from '@walpurge/config';
import type { ChangeEvent } from '@walpurge/protocol';
import { compileRules, truncateProblems, validateRulesAgainstSchema } from '@walpurge/rules';
import { createIsolatedDatabase, type IsolatedDatabase } from '@walpurge/testing';

/**
 * docs/configuration.md "What is purged, by table shape and operation" against the code: for each
 * documented shape and operation, what `walpurge validate` says on a live PostgreSQL and what the
 * plan (`walpurge explain`, the daemon) does with the change PostgreSQL sends for that shape.
 */
const doc = readFileSync(new URL('../../../../docs/configuration.md', import.meta.url), 'utf8');

function purgeTable(): Map<string, Map<string, string>> {
  const start = doc.indexOf('| Table shape');
  const rows = doc
    .slice(start, doc.indexOf('\n\n', start))
    .split('\n')
    .map((line) =>
      line
        .split('|')
        .slice(1, -1)
        .map((cell) => cell.trim()),
    );
  const [header = [], , ...body] = rows;
  return new Map(
    body.map((cells) => [cells[0] ?? '', new Map(header.slice(1).map((op, i) => [op, cells[i + 1] ?? '']))]),
  );
}

type Op = 'insert' | 'update' | 'update-change' | 'delete' | 'truncate';
const columns: Record<Op, string> = {
  insert: 'insert',
  update: 'update (values in the templates unchanged)',
  'update-change': 'update changing a value a template uses',
  delete: 'delete',
  truncate: 'truncate',
};

interface Shape {
  row: string;
  table: string;
  template: string;
  /** The old row as PostgreSQL sends it for this table's identity (protocol.md). */
  before: (old: Record<string, number>) => Record<string, number>;
  /** Whether the column the template reads is the identity (an update changes the key). */
  keyColumn: boolean;
}

const shapes: Shape[] = [
  {
    row: '`REPLICA IDENTITY FULL` (with or without a primary key)',
    table: 't_full',
    template: 'e:{v}',
    before: (old) => old,
    keyColumn: false,
  },
  {
    row: '`DEFAULT` (primary key) or `USING INDEX`: templates of key columns',
    table: 't_default',
    template: 'e:{id}',
    before: (old) => ({ id: old['id'] ?? 0 }),
    keyColumn: true,
  },
  {
    row: '`DEFAULT` or `USING INDEX`: `{col}` of a column outside the key',
    table: 't_default',
    template: 'e:{v}',
    before: (old) => ({ id: old['id'] ?? 0 }),
    keyColumn: false,
  },
  {
    row: '`DEFAULT` or `USING INDEX`: `{old.col}` of a column outside the key',
    table: 't_default',
    template: 'e:{old.v}',
    before: (old) => ({ id: old['id'] ?? 0 }),
    keyColumn: false,
  },
  {
    row: 'Generated column (`GENERATED ALWAYS AS (…) STORED`)',
    table: 't_generated',
    template: 'e:{g}',
    // The stream leaves the generated column out (before PostgreSQL 18).
    before: (old) => ({ id: old['id'] ?? 0 }),
    keyColumn: false,
  },
];

const ruleOp = {
  insert: 'insert',
  update: 'update',
  'update-change': 'update',
  delete: 'delete',
  truncate: 'truncate',
} as const;

function event(shape: Shape, op: Op): ChangeEvent {
  const old = { id: 1, v: 10 };
  const changed = shape.keyColumn ? { id: 2, v: 10 } : { id: 1, v: 11 };
  const next = op === 'update-change' ? changed : old;
  const code = { insert: 'c', update: 'u', 'update-change': 'u', delete: 'd', truncate: 't' } as const;
  const c = code[op];
  return {
    v: 1,
    op: c,
    source: {
      db: 'app',
      schema: 'public',
      table: shape.table,
      lsn: '0/1',
      xid: 1,
      commitTs: '2026-01-01T00:00:00.000Z',
      origin: null,
    },
    key: c === 't' ? null : { id: (c === 'd' ? old : next).id },
    before: c === 'u' || c === 'd' ? shape.before(old) : null,
    after: c === 'c' || c === 'u' ? next : null,
    unchanged: [],
  };
}

const problemAt = (path: ReadonlyArray<PropertyKey>, message: string): ConfigProblem => ({
  path: formatPath(path),
  message,
});

let database: IsolatedDatabase;
let sql: pg.Client;

beforeAll(async () => {
  database = await createIsolatedDatabase(inject('services').databaseUrl, 'docs_purge_table');
  sql = new pg.Client({ connectionString: database.url });
  await sql.connect();
  await sql.query(`
    CREATE TABLE t_full (id int PRIMARY KEY, v int);
    ALTER TABLE t_full REPLICA IDENTITY FULL;
    CREATE TABLE t_default (id int PRIMARY KEY, v int);
    CREATE TABLE t_generated (id int PRIMARY KEY, v int, g int GENERATED ALWAYS AS (v * 2) STORED);`);
});
afterAll(async () => {
  await sql?.end();
  await database?.drop();
});

/** What walpurge does for one shape and operation, in the table's words. */
async function outcome(shape: Shape, op: Op, withFallback: boolean): Promise<string> {
  const rule = Rule.parse({
    table: shape.table,
    on: [ruleOp[op]],
    redis: { keys: [shape.template] },
    ...(withFallback ? { fallback: { redis: { keys: ['all'] } } } : {}),
  });
  const compiled = compileRules([rule]);
  const problems = [
    ...(await validateRulesAgainstSchema([rule], sql, problemAt)),
    ...truncateProblems(compiled.rules, problemAt),
  ];
  if (problems.length > 0) return 'refused';
  const plan = compiled.planPurges(event(shape, op));
  if (plan.unknown?.some((unknown) => unknown.fallbackUsed)) return 'fallback';
  expect(plan.unknown, `${shape.row} × ${op}: a value is unknown and nothing covers it`).toBeUndefined();
  if (op === 'truncate') return plan.redis.patterns.length > 0 ? 'widened' : 'nothing';
  if (op === 'update-change' && !shape.template.includes('{old.')) {
    // Both the old and the new entry.
    expect(plan.redis.keys.sort()).toEqual(shape.keyColumn ? ['e:1', 'e:2'] : ['e:10', 'e:11']);
  }
  return 'exact';
}

describe('docs/configuration.md: what is purged, by table shape and operation', () => {
  const table = purgeTable();

  it('has the documented rows and columns', () => {
    for (const shape of shapes) expect(table.has(shape.row), shape.row).toBe(true);
    for (const column of Object.values(columns))
      expect(table.get(shapes[0]?.row ?? '')?.has(column), column).toBe(true);
  });

  for (const shape of shapes) {
    it(`${shape.row}: validate and the plan do what each cell says`, async () => {
      const full = table.get(shapes[0]?.row ?? '');
      for (const op of Object.keys(columns) as Op[]) {
        let cell = table.get(shape.row)?.get(columns[op]) ?? '';
        if (cell === 'as `FULL`') cell = full?.get(columns[op]) ?? '';
        const documented = /^[a-z]+/.exec(cell)?.[0];
        // The cell starts with what happens when the rule has a fallback…
        expect(`${op}: ${await outcome(shape, op, true)}`).toBe(`${op}: ${documented}`);
        // …and says "refused" for what is refused without one.
        const bare = await outcome(shape, op, false);
        if (bare !== documented) {
          expect(bare).toBe('refused');
          expect(cell, `${shape.row} × ${op}`).toContain('refused without');
        }
      }
    });
  }
});
