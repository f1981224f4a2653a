import type pg from 'pg';

/**
 * pool.end() resolves once its clients are asked to end, not once their sockets closed; dropping the
 * database right then terminates those sessions and the pool re-emits the FATAL as an unhandled
 * 'error' that kills the test worker. Waits for every client's 'remove' (emitted after it ended).
 */
export async function endPool(pool: pg.Pool): Promise<void> {
  const closing = pool.totalCount;
  let removed = 0;
  const allRemoved = new Promise<void>((resolve) => {
    if (closing === 0) resolve();
    pool.on('remove', () => {
      removed += 1;
      if (removed >= closing) resolve();
    });
  });
  await pool.end();
  await allRemoved;
}
