/**
 * What differs by PostgreSQL major, checked on the server under test (WALPURGE_TEST_PG_VERSION;
 * `npm test` runs this file on 13 to 18, see test/bin/pg-version-subset.ts). Each test asserts the
 * behaviour of the versions that lack a feature too, never only skips them. docs/postgresql.md's
 * table names these tests.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { Rule } from '@walpurge/config';
import { ErrorCode } from '@walpurge/core';
import {
  createIsolatedDatabase,
  serverMajor,
  startLocalPrimaryWithStandby,
  uniqueName,
  waitFor,
  withPgClient,
  type IsolatedDatabase,
  type LocalPrimaryWithStandby,
} from '@walpurge/testing';
import { publicationCoverage } from './setup/publication-coverage.js';
import { listenerConfig, newListener, startError, startListener } from './test-support/harness.js';
import { RecordingSink } from './testing/recording-sink.js';

describe('PostgreSQL version differences', () => {
  let db: IsolatedDatabase;
  let client: pg.Client;
  let major: number;

  beforeAll(async () => {
    db = await createIsolatedDatabase(inject('services').databaseUrl, 'pg_versions');
    client = new pg.Client({ connectionString: db.url });
    await client.connect();
    await client.query('CREATE TABLE items (id int PRIMARY KEY, title text, body text)');
    major = await serverMajor(client);
  });

  afterAll(async () => {
    await client?.end();
    await db?.drop();
  });

  /**
   * Creates `CREATE PUBLICATION <name> <definition>` and returns its name, on 15+; before, checks the
   * row filter or column list it names is a syntax error and returns undefined.
   */
  const createFilteredPublication = async (definition: string): Promise<string | undefined> => {
    const publication = uniqueName('pub');
    const statement = `CREATE PUBLICATION ${publication} ${definition}`;
    if (major < 15) {
      await expect(client.query(statement)).rejects.toThrow(/syntax error/);
      return undefined;
    }
    await client.query(statement);
    return publication;
  };

  // A row filter or column list on an existing publication hides changes: the entries derived from
  // rows outside the filter, or from columns outside the list, would never be purged.
  it.each([
    [
      'a row filter',
      'items WHERE (id > 10)',
      'publishes only the rows of public.items matching WHERE (id > 10)',
    ],
  ])('refuses a publication with %s (PostgreSQL 15+; a syntax error before)', async (_, table, message) => {
    const publication = await createFilteredPublication(`FOR TABLE ${table}`);
    if (publication === undefined) return;
    const error = await startError({
      config: listenerConfig(db.url, publication, ['items']),
      sink: new RecordingSink(),
    });
    expect(error.code).toBe(ErrorCode.PublicationMismatch);
    expect(error.message).toContain(message);
    expect(error.hint).toContain(`ALTER PUBLICATION "${publication}" SET TABLE "public"."items"`);
  });

  // A column list only leaves the dropped columns' values out of the changes it sends: refused when
  // the rules read one of them, accepted when it keeps every column they read.
  it.each([
    [
      'without body',
      'items (id, title)',
      'publishes only the columns id, title of public.items, but walpurge reads body',
    ],
    ['naming every column', 'items (id, title, body)', undefined],
  ])(
    'checks a column list %s against the columns the rules read (PostgreSQL 15+)',
    async (_, table, message) => {
      const publication = await createFilteredPublication(`FOR TABLE ${table}`);
      if (publication === undefined) return;
      const config = {
        ...listenerConfig(db.url, publication, ['items']),
        rules: [
          Rule.parse({ table: 'items', on: ['insert'], redis: { keys: ['item:{id}', 'body:{body}'] } }),
        ],
      };
      if (message === undefined) {
        await (await startListener({ config, sink: new RecordingSink() })).stop();
        return;
      }
      const error = await startError({ config, sink: new RecordingSink() });
      expect(error.code).toBe(ErrorCode.PublicationMismatch);
      expect(error.message).toContain(message);
      expect(error.hint).toContain('or with a column list that keeps body');
    },
  );

  // PostgreSQL applies the filter of the relation a change is published as: without
  // publish_via_partition_root each partition's own, with it the topmost published ancestor's; and
  // none for a table whose schema is a member too. Before 15 there are no filters at all.
  describe('row filters on partitions and schema members (PostgreSQL 15+)', () => {
    beforeAll(async () => {
      await client.query(`CREATE TABLE ev (id int PRIMARY KEY, kind text) PARTITION BY RANGE (id);
        CREATE TABLE ev1 PARTITION OF ev FOR VALUES FROM (0) TO (100);
        CREATE TABLE ev2 PARTITION OF ev FOR VALUES FROM (100) TO (200)`);
    });

    /** Creates the publication (15+) and returns the coverage of `tables`; undefined before 15. */
    const coverageWith = async (definition: string, tables: string[]) => {
      const publication = await createFilteredPublication(definition);
      if (publication === undefined) return undefined;
      const coverage = await publicationCoverage(
        client,
        publication,
        tables.map((table) => ({ schema: 'public', table })),
      );
      return { publication, coverage };
    };

    it("refuses a partition's own filter when the partitioned table is published without publish_via_partition_root", async () => {
      const created = await coverageWith('FOR TABLE ev, ev1 WHERE (id > 10)', ['ev']);
      if (!created) return;
      // What PostgreSQL does: ev1's filter drops the row, so nothing is sent.
      const probe = uniqueName('probe');
      await client.query("SELECT pg_create_logical_replication_slot($1, 'pgoutput')", [probe]);
      try {
        await client.query("INSERT INTO ev VALUES (1, 'hidden')");
        const { rows } = await client.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM pg_logical_slot_peek_binary_changes($1, NULL, NULL,
             'proto_version', '1', 'publication_names', $2) WHERE get_byte(data, 0) = ascii('I')`,
          [probe, created.publication],
        );
        expect(rows[0]?.n).toBe(0);
      } finally {
        await client.query('SELECT pg_drop_replication_slot($1)', [probe]);
        await client.query('TRUNCATE ev');
      }
      expect(created.coverage.tables[0]).toMatchObject({
        rowFilter: '(id > 10)',
        partialVia: { table: 'ev1' },
      });
      const error = await startError({
        config: listenerConfig(db.url, created.publication, ['ev']),
        sink: new RecordingSink(),
      });
      expect(error.code).toBe(ErrorCode.PublicationMismatch);
      expect(error.message).toContain(
        'publishes only the rows of public.ev1 (a partition of public.ev) matching WHERE (id > 10)',
      );
      expect(error.hint).toContain(`ALTER PUBLICATION "${created.publication}" SET TABLE "public"."ev1"`);
    });

    it("ignores a partition's filter under publish_via_partition_root when its root is published unfiltered", async () => {
      const created = await coverageWith(
        'FOR TABLE ev, ev1 WHERE (id > 10) WITH (publish_via_partition_root = true)',
        ['ev', 'ev1'],
      );
      if (!created) return;
      expect(created.coverage.tables.map((table) => table.rowFilter)).toEqual([null, null]);
    });

    it("uses the root's filter under publish_via_partition_root, also for a partition", async () => {
      const created = await coverageWith(
        'FOR TABLE ev WHERE (id > 5), ev1 WITH (publish_via_partition_root = true)',
        ['ev', 'ev1'],
      );
      if (!created) return;
      expect(created.coverage.tables.map((table) => table.rowFilter)).toEqual(['(id > 5)', '(id > 5)']);
    });

    it('ignores a table filter when the table is published through its schema too', async () => {
      const created = await coverageWith('FOR TABLES IN SCHEMA public, TABLE items WHERE (id > 10)', [
        'items',
      ]);
      if (!created) return;
      expect(created.coverage.tables[0]?.rowFilter).toBeNull();
      const listener = await startListener({
        config: listenerConfig(db.url, created.publication, ['items']),
        sink: new RecordingSink(),
      });
      await listener.stop();
    });
  });

  it('streams with pgoutput proto_version 1 on every version; the server accepts up to 1 (13), 2 (14), 3 (15), 4 (16+)', async () => {
    const slot = uniqueName('proto');
    const sink = new RecordingSink();
    const listener = await startListener({ config: listenerConfig(db.url, slot, ['items']), sink });
    try {
      const { rows } = await client.query<{ query: string }>(
        "SELECT query FROM pg_stat_activity WHERE backend_type = 'walsender' AND query LIKE $1",
        [`%START_REPLICATION SLOT "${slot}"%`],
      );
      expect(rows).toHaveLength(1);
      // Protocol 1: no streaming of in-progress transactions, on any version; a transaction arrives
      // whole at its commit (the server spills it to disk beyond logical_decoding_work_mem).
      expect(rows[0]?.query).toContain("proto_version '1'");
      expect(rows[0]?.query).not.toContain('streaming');
      await client.query("INSERT INTO items VALUES (1, 'one', 'x')");
      await sink.waitForEvents(1);
    } finally {
      await listener.stop();
    }

    const probe = uniqueName('probe');
    await client.query("SELECT pg_create_logical_replication_slot($1, 'pgoutput')", [probe]);
    try {
      const accepted: number[] = [];
      for (const proto of [1, 2, 3, 4]) {
        const peek = client.query(
          "SELECT count(*) FROM pg_logical_slot_peek_binary_changes($1, NULL, NULL, 'proto_version', $2, 'publication_names', $3)",
          [probe, String(proto), slot],
        );
        if (
          await peek.then(
            () => true,
            (error: Error) => (expect(error.message).toMatch(/proto_version/), false),
          )
        )
          accepted.push(proto);
      }
      const highest = { 13: 1, 14: 2, 15: 3 }[major] ?? 4;
      expect(accepted).toEqual([1, 2, 3, 4].slice(0, highest));
    } finally {
      await client.query('SELECT pg_drop_replication_slot($1)', [probe]);
    }
  });
});

// A dedicated primary and hot standby of the version under test (WALPURGE_TEST_PG_VERSION).
describe('a standby (logical decoding on standbys: PostgreSQL 16+)', () => {
  let pair: LocalPrimaryWithStandby;
  let primary: LocalPrimaryWithStandby['primary'];
  let standby: LocalPrimaryWithStandby['standby'];
  let major: number;

  beforeAll(async () => {
    pair = await startLocalPrimaryWithStandby({ standbySettings: { hot_standby_feedback: 'on' } });
    ({ primary, standby } = pair);
    major = await withPgClient(primary.url, async (client) => {
      await client.query(
        'CREATE TABLE items (id int PRIMARY KEY); CREATE PUBLICATION standby_pub FOR TABLE items',
      );
      return serverMajor(client);
    });
    await withPgClient(standby.url, (client) =>
      waitFor('the standby to replay the publication', async () => {
        const { rowCount } = await client.query("SELECT 1 FROM pg_publication WHERE pubname = 'standby_pub'");
        return rowCount === 1;
      }),
    );
  });

  afterAll(async () => {
    await pair?.stop();
  });

  it('PostgreSQL creates a logical slot on a standby from 16 on only; walpurge waits on a standby on every version, saying it needs the primary', async () => {
    await withPgClient(standby.url, async (client) => {
      const create = client.query("SELECT pg_create_logical_replication_slot('on_standby', 'pgoutput')");
      if (major < 16) {
        await expect(create).rejects.toThrow(/logical decoding cannot be used while in recovery/);
        return;
      }
      // Creation waits for the primary's next running-transactions record: ask for one until done.
      let created = false;
      const done = create.then(() => (created = true));
      await withPgClient(primary.url, async (writer) => {
        while (!created) {
          await writer.query('SELECT pg_log_standby_snapshot()');
          await Promise.race([done, new Promise((resolve) => setTimeout(resolve, 200))]);
        }
      });
      await client.query("SELECT pg_drop_replication_slot('on_standby')");
    });

    // The harness names the publication after the slot: the one replayed from the primary. A
    // standby may be tomorrow's primary (a cluster endpoint mid-failover), so the listener waits and
    // says why rather than exiting; it never creates a slot there.
    const listener = newListener({
      config: listenerConfig(standby.url, 'standby_pub', ['items']),
      sink: new RecordingSink(),
    });
    try {
      await listener.start(new AbortController().signal);
      await waitFor('the listener to say it waits for the primary', () =>
        Promise.resolve(listener.notReadyReason()?.includes('is a standby (in recovery)') === true),
      );
    } finally {
      await listener.stop();
    }
    const slots = await withPgClient(standby.url, (client) =>
      client.query('SELECT 1 FROM pg_replication_slots'),
    );
    expect(slots.rowCount).toBe(0);
  });
});
