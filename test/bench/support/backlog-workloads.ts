import type pg from 'pg';

/** A backlog both systems read: the table it touches, how to prepare it, and how to write it. */
export interface BacklogWorkload {
  name: string;
  title: string;
  table: string;
  /** Records each system must produce: one per change. */
  changes: number;
  /** Before the slots exist: schema and rows that are not part of the backlog. */
  prepare(client: pg.Client): Promise<void>;
  /** After the slots exist: the backlog itself. */
  write(client: pg.Client): Promise<void>;
}

/**
 * The writes run inside PostgreSQL (a procedure committing in a loop) so that writing the backlog is
 * quick and independent of a client's round trips; synchronous_commit=off only skips the wait for the
 * WAL flush at each commit, the decoded changes are the same.
 */
export function insertWorkload(inserts: number, txRows: number): BacklogWorkload {
  const table = 'bench_inserts';
  return {
    name: 'inserts',
    title: `${inserts.toLocaleString('en-US')} inserts in ${txRows}-row transactions`,
    table,
    changes: inserts,
    async prepare(client) {
      await client.query(
        `CREATE TABLE ${table} (id bigint PRIMARY KEY, v int NOT NULL, payload text NOT NULL)`,
      );
      await client.query(`CREATE PROCEDURE bench_insert_backlog(total bigint, tx_rows int) LANGUAGE plpgsql AS $$
        DECLARE next bigint := 1;
        BEGIN
          WHILE next <= total LOOP
            INSERT INTO ${table}
              SELECT g, 0, 'payload-' || g FROM generate_series(next, least(next + tx_rows - 1, total)) g;
            COMMIT;
            next := next + tx_rows;
          END LOOP;
        END $$`);
    },
    async write(client) {
      await client.query('SET synchronous_commit = off');
      await client.query('CALL bench_insert_backlog($1, $2)', [inserts, txRows]);
    },
  };
}

export function updateWorkload(updates: number, rows: number): BacklogWorkload {
  const table = 'bench_updates';
  return {
    name: 'updates',
    title: `${updates.toLocaleString('en-US')} single-row UPDATE transactions over ${rows.toLocaleString('en-US')} rows`,
    table,
    changes: updates,
    async prepare(client) {
      await client.query(
        `CREATE TABLE ${table} (id bigint PRIMARY KEY, v int NOT NULL, payload text NOT NULL)`,
      );
      await client.query(
        `INSERT INTO ${table} SELECT g, 0, 'payload-' || g FROM generate_series(1, $1::bigint) g`,
        [rows],
      );
      await client.query(`CREATE PROCEDURE bench_update_backlog(total bigint, row_count bigint) LANGUAGE plpgsql AS $$
        BEGIN
          FOR i IN 0 .. total - 1 LOOP
            UPDATE ${table} SET v = v + 1 WHERE id = i % row_count + 1;
            COMMIT;
          END LOOP;
        END $$`);
    },
    async write(client) {
      await client.query('SET synchronous_commit = off');
      await client.query('CALL bench_update_backlog($1, $2)', [updates, rows]);
    },
  };
}
