import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  makeTestCertificates,
  startLocalPostgres,
  startLocalRedis,
  type LocalPostgres,
  type LocalRedis,
  type TestCertificates,
} from '@walpurge/testing';
import { ITEMS_DDL, createFixture } from './test-support/fixture.js';

/**
 * The flusher over TLS only: the queue Redis on its TLS port, requiring a client certificate, and
 * PostgreSQL with ssl = on and verify-full.
 */
const services = inject('services');
let certs: TestCertificates;
let postgres: LocalPostgres;
let queueRedis: LocalRedis;

beforeAll(async () => {
  certs = await makeTestCertificates();
  const tls = { certFile: certs.serverCertFile, keyFile: certs.serverKeyFile, caFile: certs.caFile };
  [postgres, queueRedis] = await Promise.all([
    startLocalPostgres({ tls }),
    startLocalRedis({ persistent: true, tls: { ...tls, authClients: true } }),
  ]);
});
afterAll(async () => {
  await Promise.all([postgres?.stop(), queueRedis?.stop()]);
  await certs?.remove();
});

describe('write-behind flusher over TLS', () => {
  it('a write accepted on the TLS queue Redis is flushed to PostgreSQL over TLS', async () => {
    const f = await createFixture({
      databaseAdminUrl: postgres.url,
      databaseUrl: postgres.url,
      databaseSsl: { mode: 'verify-full', ca: certs.caFile },
      cacheRedisUrl: services.redisUrl,
      queueRedisUrl: queueRedis.tlsUrl!,
      flusher: {
        queueRedisTls: { ca: certs.caFile, cert: certs.clientCertFile, key: certs.clientKeyFile },
      },
    });
    try {
      await f.pool.query(ITEMS_DDL);
      await f.startFlusher();
      const { version } = await f.client.writeBehind('items', { id: 1, value: 'over tls', n: 1 });
      await f.drained();
      const { rows } = await f.pool.query<{ value: string; _walpurge_version: string }>(
        'SELECT value, _walpurge_version FROM items WHERE id = 1',
      );
      expect(rows).toEqual([{ value: 'over tls', _walpurge_version: version }]);

      // Every connection the flusher holds to PostgreSQL is encrypted.
      const check = new pg.Client({ connectionString: postgres.url });
      await check.connect();
      try {
        const sessions = await check.query<{ ssl: boolean }>(
          `SELECT s.ssl FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid)
            WHERE a.application_name = 'walpurge-flusher'`,
        );
        expect(sessions.rows.length).toBeGreaterThan(0);
        expect(sessions.rows.every((row) => row.ssl)).toBe(true);
      } finally {
        await check.end();
      }
    } finally {
      await f.close();
    }
  });

  it('a certificate problem fails the start with one line, for the queue Redis and for PostgreSQL', async () => {
    const options = {
      databaseAdminUrl: postgres.url,
      databaseUrl: postgres.url,
      cacheRedisUrl: services.redisUrl,
      queueRedisUrl: queueRedis.tlsUrl!,
      flusher: { queueRedisTls: { ca: certs.caFile, cert: certs.clientCertFile, key: certs.clientKeyFile } },
    };
    const queueAddress = queueRedis.tlsUrl!.replace('rediss://', '');
    const wrongQueueCa = await createFixture({ ...options, databaseSsl: { ca: certs.caFile } });
    try {
      await expect(
        wrongQueueCa.startFlusher({
          queueRedisTls: { ca: certs.otherCaFile, cert: certs.clientCertFile, key: certs.clientKeyFile },
        }),
      ).rejects.toThrow(
        `TLS to the queue Redis at ${queueAddress} failed: the server's certificate is not signed by a trusted CA (SELF_SIGNED_CERT_IN_CHAIN); set flusher.queueRedisTls.ca`,
      );
    } finally {
      await wrongQueueCa.close();
    }
    const wrongDatabaseCa = await createFixture({ ...options, databaseSsl: { ca: certs.otherCaFile } });
    try {
      await expect(wrongDatabaseCa.startFlusher()).rejects.toThrow(
        `TLS to PostgreSQL at 127.0.0.1:${postgres.port}/postgres failed: the server's certificate is not signed by a trusted CA (SELF_SIGNED_CERT_IN_CHAIN); set database.ssl.ca`,
      );
    } finally {
      await wrongDatabaseCa.close();
    }
  });
});
