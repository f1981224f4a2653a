/**
 * The slot's confirmed position at the boundary between two adjacent commits. The library adds 1 to
 * whatever LSN it reports, and PostgreSQL skips, on the next start, any transaction whose commit
 * record starts before the confirmed position: confirming one byte past a commit's end could skip
 * the next one. So with the first commit durable and the second not, the slot must sit exactly at the
 * first commit's end, and a restart must replay the second (and only it).
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { compareLsn } from '@walpurge/protocol';
import type { ChangeEvent } from '@walpurge/protocol';
import { createIsolatedDatabase, uniqueName, waitFor, type IsolatedDatabase } from '@walpurge/testing';
import type { ListenerSink } from './listener.js';
import { confirmedFlush, listenerConfig, startListener } from './test-support/harness.js';
import { RecordingSink } from './testing/recording-sink.js';

const services = inject('services');

/** Acknowledges every call except one holding row `stuckId`, which never finishes (a hung broker). */
class StuckOnRowSink implements ListenerSink {
  readonly acknowledged: ChangeEvent[] = [];
  stuckCalls = 0;
  constructor(private readonly stuckId: number) {}

  publish(events: readonly ChangeEvent[], signal?: AbortSignal): Promise<void> {
    if (!events.some((event) => event.key?.['id'] === this.stuckId)) {
      this.acknowledged.push(...events);
      return Promise.resolve();
    }
    this.stuckCalls += 1;
    return new Promise((_resolve, reject) =>
      signal?.addEventListener('abort', () => reject(new Error('abandoned')), { once: true }),
    );
  }
}

describe('acknowledgement at the boundary of adjacent commits', () => {
  let db: IsolatedDatabase;
  let client: pg.Client;

  beforeAll(async () => {
    db = await createIsolatedDatabase(services.databaseUrl, 'listener_boundary');
    client = new pg.Client({ connectionString: db.url });
    await client.connect();
    await client.query('CREATE TABLE items (id int PRIMARY KEY, v int)');
  });

  afterAll(async () => {
    await client?.end();
    await db?.drop();
  });

  it('never confirms past the durable first commit’s end, and a restart replays the second', async () => {
    const slot = uniqueName('boundary');
    const probe = uniqueName('probe');
    const config = listenerConfig(db.url, slot, ['items'], { statusIntervalMs: 200 });
    const sink = new StuckOnRowSink(2);
    const listener = await startListener({ config, sink, tuning: { drainTimeoutMs: 500 } });
    let firstEnd: string;
    try {
      // Sees the same WAL, and tells each commit's end LSN (test_decoding reports it on COMMIT).
      await client.query("SELECT pg_create_logical_replication_slot($1, 'test_decoding')", [probe]);
      // Two commits in one round trip: adjacent in the stream, one right behind the other.
      await client.query(
        'BEGIN; INSERT INTO items VALUES (1, 1); COMMIT; BEGIN; INSERT INTO items VALUES (2, 2); COMMIT;',
      );
      const { rows } = await client.query<{ lsn: string; xid: string; data: string }>(
        'SELECT lsn::text AS lsn, xid::text AS xid, data FROM pg_logical_slot_peek_changes($1, NULL, NULL)',
        [probe],
      );
      // The commits of these two inserts only: the listener records each position it confirms in
      // this database (an UPDATE of its slot history table), e.g. the first commit's, or the WAL's
      // end when other test files move it on; on a busy machine that can come before this peek.
      const inserts = new Set(
        rows.filter((row) => row.data.startsWith('table public.items: INSERT')).map((row) => row.xid),
      );
      const commits = rows.filter((row) => row.data.startsWith('COMMIT') && inserts.has(row.xid));
      expect(commits).toHaveLength(2);
      firstEnd = (commits[0] as { lsn: string }).lsn;
      const secondEnd = (commits[1] as { lsn: string }).lsn;
      expect(compareLsn(secondEnd, firstEnd)).toBe(1);

      await waitFor(
        'row 1 acknowledged and row 2 stuck in the sink',
        async () => sink.acknowledged.some((event) => event.key?.['id'] === 1) && sink.stuckCalls > 0,
      );
      await waitFor('the first commit confirmed', async () => listener.durableLsn() === firstEnd);
      await waitFor(
        'the slot at the first commit’s end',
        async () => (await confirmedFlush(client, slot)) === firstEnd,
        { timeoutMs: 10_000 },
      );
      // Several status intervals later, still exactly there: not one byte further.
      await new Promise((resolve) => setTimeout(resolve, 1000));
      expect(await confirmedFlush(client, slot)).toBe(firstEnd);
    } finally {
      await listener.stop();
      await client.query('SELECT pg_drop_replication_slot($1)', [probe]);
    }
    // The stop abandoned the stuck call and reported the durable position one last time.
    expect(await confirmedFlush(client, slot)).toBe(firstEnd);

    const replay = new RecordingSink();
    const restarted = await startListener({ config, sink: replay });
    try {
      await replay.waitForEvents(1);
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect(replay.events.map((event) => event.key?.['id'])).toEqual([2]);
    } finally {
      await restarted.stop();
    }
  });
});
