import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ErrorCode, createLogger, createMetricsRegistry } from '@walpurge/core';
import type { ChangeEvent } from '@walpurge/protocol';
import { createIsolatedDatabase, uniqueName, waitFor, type IsolatedDatabase } from '@walpurge/testing';
import type { Listener } from './listener.js';
import {
  listenerConfig,
  metricValue,
  startError,
  startListener,
  type TestListenerOptions,
} from './test-support/harness.js';
import { RecordingSink } from './testing/recording-sink.js';

const services = inject('services');

/** What the rules see: table, op and the row identity, in stream order. */
function summary(events: readonly ChangeEvent[]): string[] {
  return events.map(
    (event) =>
      `${event.source.schema}.${event.source.table} ${event.op} ${JSON.stringify(event.key)} ${JSON.stringify(event.after)}`,
  );
}

describe('listener: partitioned tables', () => {
  let db: IsolatedDatabase;
  let client: pg.Client;

  beforeAll(async () => {
    db = await createIsolatedDatabase(services.databaseUrl, 'listener_partitions');
    client = new pg.Client({ connectionString: db.url });
    await client.connect();
  });

  afterAll(async () => {
    await client?.end();
    await db?.drop();
  });

  /** A range-partitioned table `name` (by k) with partitions name_a [0,10) and name_b [10,20). */
  async function createPartitioned(name: string): Promise<void> {
    await client.query(`
      CREATE TABLE ${name} (id int, k int, v text, PRIMARY KEY (id, k)) PARTITION BY RANGE (k);
      CREATE TABLE ${name}_a PARTITION OF ${name} FOR VALUES FROM (0) TO (10);
      CREATE TABLE ${name}_b PARTITION OF ${name} FOR VALUES FROM (10) TO (20);`);
  }

  async function withListener(
    options: TestListenerOptions,
    body: (sink: RecordingSink, listener: Listener) => Promise<void>,
  ): Promise<void> {
    const sink = (options.sink as RecordingSink | undefined) ?? new RecordingSink();
    const listener = await startListener({ ...options, sink });
    try {
      await body(sink, listener);
    } finally {
      await listener.stop();
    }
  }

  it('reports every change of a partition under the partitioned table, including a row that moves partitions and a partition created while streaming', async () => {
    await createPartitioned('readings');
    const slot = uniqueName('part');
    const config = listenerConfig(db.url, slot, [], { rulesTables: ['readings'] });
    await withListener({ config }, async (sink) => {
      await client.query("INSERT INTO readings VALUES (1, 1, 'x')");
      // Moving a row to another partition: PostgreSQL publishes a delete from the old partition and an
      // insert into the new one; both must name the partitioned table so both cache entries are purged.
      await client.query('UPDATE readings SET k = 11 WHERE id = 1');
      await client.query("UPDATE readings SET v = 'y' WHERE id = 1");
      await client.query('CREATE TABLE readings_c PARTITION OF readings FOR VALUES FROM (20) TO (30)');
      await client.query("INSERT INTO readings VALUES (2, 25, 'new partition')");
      await client.query('DELETE FROM readings WHERE id = 2');
      await waitFor('6 events', async () => sink.events.length >= 6);
      expect(summary(sink.events)).toEqual([
        'public.readings c {"id":1,"k":1} {"id":1,"k":1,"v":"x"}',
        'public.readings d {"id":1,"k":1} null',
        'public.readings c {"id":1,"k":11} {"id":1,"k":11,"v":"x"}',
        'public.readings u {"id":1,"k":11} {"id":1,"k":11,"v":"y"}',
        'public.readings c {"id":2,"k":25} {"id":2,"k":25,"v":"new partition"}',
        'public.readings d {"id":2,"k":25} null',
      ]);
    });
  });

  it('TRUNCATE of one partition arrives as a truncate of the partitioned table', async () => {
    await createPartitioned('batches');
    const slot = uniqueName('parttrunc');
    const config = listenerConfig(db.url, slot, [], { rulesTables: ['batches'] });
    await withListener({ config }, async (sink) => {
      await client.query("INSERT INTO batches VALUES (1, 1, 'x')");
      await client.query('TRUNCATE batches_a');
      await waitFor('2 events', async () => sink.events.length >= 2);
      expect(summary(sink.events)).toEqual([
        'public.batches c {"id":1,"k":1} {"id":1,"k":1,"v":"x"}',
        'public.batches t null null',
      ]);
    });
  });

  it('follows ATTACH and DETACH PARTITION while streaming', async () => {
    await createPartitioned('shipments');
    await client.query('CREATE TABLE shipments_later (id int, k int, v text, PRIMARY KEY (id, k))');
    const slot = uniqueName('attach');
    const config = listenerConfig(db.url, slot, [], { rulesTables: ['shipments'] });
    await withListener({ config }, async (sink) => {
      await client.query("INSERT INTO shipments_later VALUES (1, 30, 'before attach')"); // not published
      await client.query(
        'ALTER TABLE shipments ATTACH PARTITION shipments_later FOR VALUES FROM (30) TO (40)',
      );
      await client.query("UPDATE shipments SET v = 'attached' WHERE id = 1");
      await waitFor('attached', async () => sink.events.length >= 1);
      await client.query('ALTER TABLE shipments DETACH PARTITION shipments_later');
      await client.query("UPDATE shipments_later SET v = 'detached' WHERE id = 1"); // no longer published
      await client.query("INSERT INTO shipments VALUES (2, 2, 'marker')");
      await waitFor('marker', async () => sink.events.some((event) => event.key?.['id'] === 2));
      expect(summary(sink.events)).toEqual([
        'public.shipments u {"id":1,"k":30} {"id":1,"k":30,"v":"attached"}',
        'public.shipments c {"id":2,"k":2} {"id":2,"k":2,"v":"marker"}',
      ]);
    });
  });

  it('says so (log and metric) when a partition was detached before its changes were read', async () => {
    await createPartitioned('parts');
    const slot = uniqueName('detached');
    const config = listenerConfig(db.url, slot, [], { rulesTables: ['parts'] });
    await withListener({ config }, async () => {});
    // Written while the listener is down, detached before it reads the change: today's catalog no
    // longer knows the partitioned table it belonged to.
    await client.query("INSERT INTO parts VALUES (1, 12, 'x')");
    await client.query('ALTER TABLE parts DETACH PARTITION parts_b');
    const lines: string[] = [];
    const logger = createLogger({
      level: 'warn',
      pretty: false,
      destination: { write: (l) => lines.push(l) },
    });
    const registry = createMetricsRegistry({ defaultMetrics: false });
    await withListener({ config, logger, registry }, async (sink) => {
      await waitFor('1 event', async () => sink.events.length >= 1);
      expect(summary(sink.events)).toEqual(['public.parts_b c {"id":1,"k":12} {"id":1,"k":12,"v":"x"}']);
    });
    expect(
      await metricValue(registry, 'walpurge_listener_unresolved_relations_total', {
        table: 'public.parts_b',
      }),
    ).toBe(1);
    expect(
      lines.some((line) => line.includes('relation public.parts_b is streamed but is neither a partition')),
    ).toBe(true);
  });

  it('starts on an existing publication that publishes partitions as themselves, and again after a restart', async () => {
    await createPartitioned('orders');
    const slot = uniqueName('leafpub');
    await client.query(`CREATE PUBLICATION ${slot} FOR TABLE orders`); // publish_via_partition_root = false
    const config = listenerConfig(db.url, slot, [], { rulesTables: ['orders'] });
    const sink = new RecordingSink();
    await withListener({ config, sink }, async () => {
      await client.query("INSERT INTO orders VALUES (1, 15, 'x')");
      await waitFor('1 event', async () => sink.events.length >= 1);
    });
    // The second start checks the publication walpurge finds (the first one found it too).
    await withListener({ config, sink }, async () => {
      await client.query('DELETE FROM orders WHERE id = 1');
      await waitFor('2 events', async () => sink.events.length >= 2);
    });
    expect(summary(sink.events)).toEqual([
      'public.orders c {"id":1,"k":15} {"id":1,"k":15,"v":"x"}',
      'public.orders d {"id":1,"k":15} null',
    ]);
  });

  it('on a publication that has only the partitions as members, hints an ADD TABLE that works', async () => {
    await createPartitioned('invoices');
    const slot = uniqueName('leavesonly');
    await client.query(`CREATE PUBLICATION ${slot} FOR TABLE invoices_a, invoices_b`);
    const config = listenerConfig(db.url, slot, [], { rulesTables: ['invoices'] });
    const error = await startError({ config, sink: new RecordingSink() });
    expect(error.code).toBe(ErrorCode.PublicationMismatch);
    // A partition created later would not be published: the partitioned table itself must be a member.
    const statement = /run (ALTER PUBLICATION .* ADD TABLE "public"\."invoices")/.exec(error.hint ?? '')?.[1];
    expect(statement).toBeDefined();
    await client.query(statement as string);
    await withListener({ config }, async (sink) => {
      await client.query("INSERT INTO invoices VALUES (1, 3, 'x')");
      await waitFor('1 event', async () => sink.events.length >= 1);
      expect(summary(sink.events)).toEqual(['public.invoices c {"id":1,"k":3} {"id":1,"k":3,"v":"x"}']);
    });
  });

  it('restarts on the publication it created for a partitioned table', async () => {
    await createPartitioned('tickets');
    const slot = uniqueName('restart');
    const config = listenerConfig(db.url, slot, [], { rulesTables: ['tickets'] });
    const sink = new RecordingSink();
    await withListener({ config, sink }, async () => {});
    await withListener({ config, sink }, async () => {
      await client.query("INSERT INTO tickets VALUES (1, 5, 'x')");
      await waitFor('1 event', async () => sink.events.length >= 1);
    });
    expect(summary(sink.events)).toEqual(['public.tickets c {"id":1,"k":5} {"id":1,"k":5,"v":"x"}']);
  });

  it('warns that publish_via_partition_root = true loses TRUNCATE of a single partition', async () => {
    await createPartitioned('parcels');
    const slot = uniqueName('viaroot');
    await client.query(
      `CREATE PUBLICATION ${slot} FOR TABLE parcels WITH (publish_via_partition_root = true)`,
    );
    const lines: string[] = [];
    const logger = createLogger({
      level: 'warn',
      pretty: false,
      destination: { write: (l) => lines.push(l) },
    });
    const config = listenerConfig(db.url, slot, [], { rulesTables: ['parcels'] });
    await withListener({ config, logger }, async (sink) => {
      await client.query("INSERT INTO parcels VALUES (1, 1, 'x')");
      await client.query('TRUNCATE parcels_a'); // PostgreSQL publishes nothing for this
      await client.query("INSERT INTO parcels VALUES (2, 12, 'marker')");
      await waitFor('marker', async () => sink.events.some((event) => event.key?.['id'] === 2));
      expect(summary(sink.events)).toEqual([
        'public.parcels c {"id":1,"k":1} {"id":1,"k":1,"v":"x"}',
        'public.parcels c {"id":2,"k":12} {"id":2,"k":12,"v":"marker"}',
      ]);
    });
    const warning = lines
      .map((line) => JSON.parse(line) as { msg: string; hint?: string })
      .find((entry) => entry.msg.includes('publish_via_partition_root'));
    expect(warning?.hint).toContain(`ALTER PUBLICATION "${slot}" SET (publish_via_partition_root = false)`);
  });

  it('refuses a rule written for a partition, naming the partitioned table to use', async () => {
    await createPartitioned('events');
    const error = await startError({
      config: listenerConfig(db.url, uniqueName('leafrule'), [], { rulesTables: ['events', 'events_b'] }),
      sink: new RecordingSink(),
    });
    expect(error.code).toBe(ErrorCode.PublicationMismatch);
    expect(error.message).toContain('rules[1]: public.events_b is a partition of public.events');
    expect(error.hint).toContain('write rules[1] for table public.events');
  });

  it('checks the replica identity of every partition, not of the partitioned table', async () => {
    await client.query(`
      CREATE TABLE logbook (id int, k int) PARTITION BY RANGE (k);
      CREATE TABLE logbook_a PARTITION OF logbook (PRIMARY KEY (id)) FOR VALUES FROM (0) TO (10);
      CREATE TABLE logbook_b PARTITION OF logbook FOR VALUES FROM (10) TO (20);
      ALTER TABLE logbook_b REPLICA IDENTITY FULL;`);
    const slot = uniqueName('identity');
    const config = listenerConfig(db.url, slot, [], { rulesTables: ['logbook'] });
    // The parent has no primary key, but each partition has a usable identity: accepted.
    await withListener({ config }, async (sink) => {
      await client.query('INSERT INTO logbook VALUES (1, 1), (2, 12)');
      await client.query('UPDATE logbook SET id = id + 10');
      await waitFor('4 events', async () => sink.events.length >= 4);
      expect(sink.events.map((event) => [event.source.table, event.op, event.before])).toEqual([
        ['logbook', 'c', null],
        ['logbook', 'c', null],
        ['logbook', 'u', { id: 1 }],
        ['logbook', 'u', { id: 2, k: 12 }],
      ]);
    });
    await client.query('CREATE TABLE logbook_c PARTITION OF logbook FOR VALUES FROM (20) TO (30)');
    const error = await startError({
      config: listenerConfig(db.url, uniqueName('identity'), [], { rulesTables: ['logbook'] }),
      sink: new RecordingSink(),
    });
    expect(error.code).toBe(ErrorCode.ReplicaIdentity);
    expect(error.message).toContain('public.logbook_c');
  });
});

describe('listener: rules whose tables are not published', () => {
  let db: IsolatedDatabase;

  beforeAll(async () => {
    db = await createIsolatedDatabase(services.databaseUrl, 'listener_rule_tables');
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    await client.query('CREATE TABLE users (id int PRIMARY KEY); CREATE TABLE orders (id int PRIMARY KEY)');
    await client.end();
  });

  afterAll(async () => {
    await db?.drop();
  });

  it('refuses to start when database.tables leaves out a rule table, naming the rule', async () => {
    const error = await startError({
      config: listenerConfig(db.url, uniqueName('tables'), ['users'], { rulesTables: ['users', 'orders'] }),
      sink: new RecordingSink(),
    });
    expect(error.code).toBe(ErrorCode.PublicationMismatch);
    expect(error.message).toContain('rules[1]: table public.orders is not in publication');
    expect(error.hint).toContain('add public.orders to database.tables');
  });
});
