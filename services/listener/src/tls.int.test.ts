import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode, createLogger } from '@walpurge/core';
import {
  makeTestCertificates,
  startLocalPostgres,
  uniqueName,
  waitFor,
  type LocalPostgres,
  type TestCertificates,
} from '@walpurge/testing';
import type { DatabaseSslConfig } from '@walpurge/config';
import { listenerConfig, startError, startListener } from './test-support/harness.js';
import { RecordingSink } from './testing/recording-sink.js';

/** The listener against a PostgreSQL of its own with ssl = on. */
let certs: TestCertificates;
let postgres: LocalPostgres;
let db: pg.Client;

beforeAll(async () => {
  certs = await makeTestCertificates();
  postgres = await startLocalPostgres({
    tls: { certFile: certs.serverCertFile, keyFile: certs.serverKeyFile },
  });
  db = new pg.Client({ connectionString: postgres.url });
  await db.connect();
  await db.query('CREATE TABLE items (id int PRIMARY KEY, sku text)');
});
afterAll(async () => {
  await db?.end().catch(() => {});
  await postgres?.stop();
  await certs?.remove();
});

function tlsConfig(slot: string, ssl: DatabaseSslConfig) {
  const config = listenerConfig(postgres.url, slot, ['items']);
  config.database!.ssl = ssl;
  return config;
}

describe('listener over TLS', () => {
  it('streams a committed UPDATE over a verify-full connection, every session of it encrypted', async () => {
    const slot = uniqueName('tls');
    const sink = new RecordingSink();
    const listener = await startListener({
      config: tlsConfig(slot, { mode: 'verify-full', ca: certs.caFile }),
      sink,
    });
    try {
      await db.query("INSERT INTO items VALUES (1, 'a')");
      await db.query("UPDATE items SET sku = 'b' WHERE id = 1");
      await waitFor('the update to be streamed', async () => sink.events.some((event) => event.op === 'u'));
      const { rows } = await db.query<{ application_name: string; ssl: boolean }>(
        `SELECT a.application_name, s.ssl FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid)
          WHERE a.application_name LIKE 'walpurge-listener%' ORDER BY 1`,
      );
      expect(rows.map((row) => row.application_name)).toContain('walpurge-listener');
      expect(rows.every((row) => row.ssl)).toBe(true);
    } finally {
      await listener.stop();
      await db.query('SELECT pg_drop_replication_slot($1)', [slot]).catch(() => {});
    }
  });

  it('a wrong CA fails the start with one line naming host, reason and fix; no retry', async () => {
    const error = await startError({
      config: tlsConfig(uniqueName('tls'), { ca: certs.otherCaFile }),
      sink: new RecordingSink(),
    });
    expect(error.code).toBe(ErrorCode.DatabaseUnreachable);
    expect(error.retriable).toBe(false);
    expect(error.message).toMatch(
      new RegExp(
        `^TLS to PostgreSQL at 127\\.0\\.0\\.1:${postgres.port}/postgres failed: the server's certificate is not signed by a trusted CA \\((UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED_CERT_IN_CHAIN)\\); set database\\.ssl\\.ca to the CA \\(or the provider's bundle\\) that signed the server's certificate$`,
      ),
    );
  });

  it('no-verify streams encrypted and warns at start that nothing is checked', async () => {
    const slot = uniqueName('tls');
    const lines: string[] = [];
    const logger = createLogger({
      level: 'warn',
      pretty: false,
      destination: { write: (l) => lines.push(l) },
    });
    const listener = await startListener({
      config: tlsConfig(slot, { mode: 'no-verify' }),
      sink: new RecordingSink(),
      logger,
    });
    try {
      const warnings = lines.map((line) => (JSON.parse(line) as { msg: string }).msg);
      expect(warnings).toContain(
        "sslmode no-verify: encrypted, but the server's certificate is not checked: anyone on the path can impersonate it; use verify-full with `ca`",
      );
      const { rows } = await db.query<{ ssl: boolean }>(
        `SELECT s.ssl FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid)
          WHERE a.application_name = 'walpurge-listener'`,
      );
      expect(rows.length).toBeGreaterThan(0);
      expect(rows.every((row) => row.ssl)).toBe(true);
    } finally {
      await listener.stop();
      await db.query('SELECT pg_drop_replication_slot($1)', [slot]).catch(() => {});
    }
  });
});
