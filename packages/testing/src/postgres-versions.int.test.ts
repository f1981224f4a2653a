import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { startLocalPostgres, type LocalPostgres } from './index.js';

// Each version is fetched with mvn once per machine (about 15 MB, a few seconds), then unpacked
// in ~2 s; later runs only pay initdb + start.
describe('startLocalPostgres({ version })', () => {
  const servers: LocalPostgres[] = [];

  afterAll(async () => {
    await Promise.all(servers.map((server) => server.stop()));
  });

  it.each([
    [17, 170_000],
    [13, 130_000],
  ] as const)('runs PostgreSQL %i with logical decoding', async (version, floor) => {
    const server = await startLocalPostgres({ version });
    servers.push(server);
    const client = new pg.Client({ connectionString: server.url });
    await client.connect();
    try {
      const { rows } = await client.query<{ server_version_num: string }>('SHOW server_version_num');
      const num = Number(rows[0]?.server_version_num);
      expect(num).toBeGreaterThanOrEqual(floor);
      expect(num).toBeLessThan(floor + 10_000);
      // The bundled lib/ must hold pgoutput, the plugin the listener streams with.
      await client.query("SELECT pg_create_logical_replication_slot('probe', 'pgoutput')");
      const { rows: slots } = await client.query<{ plugin: string }>(
        'SELECT plugin FROM pg_replication_slots',
      );
      expect(slots).toEqual([{ plugin: 'pgoutput' }]);
    } finally {
      await client.end();
    }
  });
});
