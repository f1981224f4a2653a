import { insertWorkload, type BacklogWorkload } from './backlog-workloads.js';

/** One memory scenario: what is written while walpurge is stopped, and what the topic must accept. */
export interface MemoryScenario {
  name: 'transaction' | 'backlog' | 'big-rows';
  workload: BacklogWorkload;
  /**
   * kafka.maxMessageBytes and the topic's max.message.bytes, when the records outgrow Kafka's
   * default (a row of 1 MB and its JSON framing): otherwise the listener would send the row without
   * its big column, and the benchmark would measure small records.
   */
  maxMessageBytes?: number;
}

/** All `rows` inserted by one INSERT … SELECT generate_series: one transaction. */
export function oneTransaction(rows: number): MemoryScenario {
  const workload = insertWorkload(rows, rows);
  return {
    name: 'transaction',
    workload: { ...workload, title: `one transaction of ${rows.toLocaleString('en-US')} inserted rows` },
  };
}

/** `changes` inserts in transactions of `txRows` rows: the backlog a long outage leaves behind. */
export function backlog(changes: number, txRows: number): MemoryScenario {
  return { name: 'backlog', workload: insertWorkload(changes, txRows) };
}

/**
 * `rows` rows of `rowBytes` bytes of text each, in one transaction (the harder case: a listener
 * holding a whole transaction would hold all of them). The text repeats an md5: TOAST compresses it
 * in the WAL, but the listener decodes, and Kafka carries, every byte.
 */
export function bigRows(rows: number, rowBytes: number): MemoryScenario {
  const table = 'bench_big_rows';
  const repeats = Math.ceil(rowBytes / 32);
  return {
    name: 'big-rows',
    maxMessageBytes: 2 * rowBytes + 64 * 1024,
    workload: {
      name: 'big-rows',
      title: `one transaction of ${rows.toLocaleString('en-US')} rows of ${(rowBytes / 1e6).toFixed(1)} MB text each`,
      table,
      changes: rows,
      async prepare(client) {
        await client.query(
          `CREATE TABLE ${table} (id bigint PRIMARY KEY, v int NOT NULL, payload text NOT NULL)`,
        );
      },
      async write(client) {
        await client.query('SET synchronous_commit = off');
        await client.query(
          `INSERT INTO ${table}
             SELECT g, 0, left(repeat(md5(g::text), $2), $3) FROM generate_series(1, $1::bigint) g`,
          [rows, repeats, rowBytes],
        );
      },
    },
  };
}
