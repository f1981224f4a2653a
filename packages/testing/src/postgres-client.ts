import pg from 'pg';

/** Opens a connection, runs `work`, always closes it. For short administrative round trips. */
export async function withPgClient<T>(url: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5_000 });
  // A server going away mid-query emits 'error' on the client; unhandled, that kills the process.
  client.on('error', () => {});
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end().catch(() => {});
  }
}

/** The server's major version (e.g. 17), from server_version_num so betas and distro suffixes parse too. */
export async function serverMajor(client: pg.Client): Promise<number> {
  const { rows } = await client.query<{ v: string }>("SELECT current_setting('server_version_num') AS v");
  return Math.floor(Number(rows[0]?.v) / 10000);
}

/** Double-quotes an identifier for SQL that cannot take it as a bind parameter (CREATE DATABASE). */
export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}
