import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  freePort,
  makeTestCertificates,
  startLocalPostgres,
  startLocalRedis,
  waitFor,
  type LocalPostgres,
  type LocalRedis,
  type TestCertificates,
} from '@walpurge/testing';
import { runCli } from './cli.js';
import { captureIo } from './testing/capture-io.js';
import { spawnWalpurge, waitUntilReady, type WalpurgeProcess } from './testing/walpurge-process.js';

/**
 * TLS end to end, against a PostgreSQL of its own with ssl = on (client certificates required for
 * one role) and redis-servers with a TLS port: `walpurge run` streams over TLS and purges over
 * rediss://, and every certificate problem is one line naming the host, the reason and the fix.
 */
const CERT_ROLE = 'walpurge_tls';
const dir = mkdtempSync(join(tmpdir(), 'walpurge-tls-'));
let certs: TestCertificates;
let postgres: LocalPostgres;
let cacheRedis: LocalRedis;
let queueRedis: LocalRedis;
let db: pg.Client;
let redis: Redis;
const children: WalpurgeProcess[] = [];

beforeAll(async () => {
  certs = await makeTestCertificates({ clientName: CERT_ROLE });
  const tls = { certFile: certs.serverCertFile, keyFile: certs.serverKeyFile, caFile: certs.caFile };
  [postgres, cacheRedis, queueRedis] = await Promise.all([
    startLocalPostgres({
      tls,
      // 127.0.0.2 is not in the server certificate: connecting by it is a hostname mismatch.
      settings: { listen_addresses: '127.0.0.1,127.0.0.2' },
      hbaPrefix: [
        `hostssl all ${CERT_ROLE} 127.0.0.1/32 cert`,
        `hostssl replication ${CERT_ROLE} 127.0.0.1/32 cert`,
        `host all ${CERT_ROLE} 127.0.0.1/32 reject`,
        `host replication ${CERT_ROLE} 127.0.0.1/32 reject`,
        '',
      ].join('\n'),
    }),
    startLocalRedis({ tls }),
    startLocalRedis({ persistent: true, tls: { ...tls, authClients: true } }),
  ]);
  db = new pg.Client({ connectionString: postgres.url });
  await db.connect();
  await db.query(`CREATE ROLE ${CERT_ROLE} LOGIN SUPERUSER REPLICATION`);
  await db.query('CREATE TABLE items (id int PRIMARY KEY, sku text NOT NULL)');
  await db.query("INSERT INTO items VALUES (1, 'a')");
  redis = new Redis(cacheRedis.url);
});

afterAll(async () => {
  for (const child of children) if (child.child.exitCode === null) await child.killNow();
  await db?.end().catch(() => {});
  redis?.disconnect();
  await Promise.all([postgres?.stop(), cacheRedis?.stop(), queueRedis?.stop()]);
  await certs?.remove();
  rmSync(dir, { recursive: true, force: true });
});

const certUrl = (host = '127.0.0.1'): string => `postgres://${CERT_ROLE}@${host}:${postgres.port}/postgres`;

/** A config file: the database over TLS with `ssl` (YAML lines), the cache Redis over rediss://. */
function writeConfig(name: string, database: { url: string; ssl?: string }, extra = ''): string {
  const file = join(dir, `${name}.yaml`);
  writeFileSync(
    file,
    `transport: inline
database:
  url: ${database.url}
  slot: tls_${name.toLowerCase().replace(/-/g, '_')}
  publication: tls_${name.toLowerCase().replace(/-/g, '_')}
  statusIntervalMs: 500
${database.ssl ?? ''}redis:
  url: ${cacheRedis.tlsUrl}
  tls:
    ca: ${certs.caFile}
log:
  level: warn
rules:
  - table: public.items
    redis:
      keys: ['item:{id}']
${extra}`,
  );
  return file;
}

const verifiedWithClientCertificate = `  ssl:
    mode: verify-full
    ca: ${'${CA}'}
    cert: ${'${CERT}'}
    key: ${'${KEY}'}
`;

function env(): Record<string, string> {
  return { CA: certs.caFile, CERT: certs.clientCertFile, KEY: certs.clientKeyFile };
}

async function validate(
  file: string,
  ...flags: string[]
): Promise<{ code: number; out: string; err: string }> {
  const io = captureIo(env());
  const code = await runCli(['validate', '--config', file, ...flags], io);
  return { code, out: io.out(), err: io.err() };
}

describe('TLS to PostgreSQL and Redis', () => {
  it('walpurge run streams over verify-full TLS with a client certificate and purges over rediss://', async () => {
    const file = writeConfig('run', { url: certUrl(), ssl: verifiedWithClientCertificate });
    const port = await freePort();
    const walpurge = spawnWalpurge(
      ['run', '--config', file, '--role', 'all', '--http-port', String(port)],
      env(),
    );
    children.push(walpurge);
    await waitUntilReady(port, walpurge);

    // The walsender serving walpurge speaks TLS and authenticated the client certificate.
    const { rows } = await db.query<{ ssl: boolean; client_dn: string | null }>(
      `SELECT s.ssl, s.client_dn FROM pg_stat_replication r JOIN pg_stat_ssl s USING (pid)
        WHERE r.usename = $1`,
      [CERT_ROLE],
    );
    expect(rows).toEqual([{ ssl: true, client_dn: `/CN=${CERT_ROLE}` }]);

    await redis.set('item:1', 'stale');
    await db.query("UPDATE items SET sku = 'b' WHERE id = 1");
    await waitFor('item:1 to be purged over rediss://', async () => (await redis.exists('item:1')) === 0);
    walpurge.child.kill('SIGTERM');
    expect(await walpurge.exited).toBe(0);
  });

  it('validate accepts the TLS config, the queue Redis over TLS with a client certificate included', async () => {
    const file = writeConfig(
      'valid',
      { url: certUrl(), ssl: verifiedWithClientCertificate },
      `flusher:
  queueRedisUrl: ${queueRedis.tlsUrl}
  queueRedisTls:
    ca: ${certs.caFile}
    cert: ${certs.clientCertFile}
    key: ${certs.clientKeyFile}
`,
    );
    const result = await validate(file);
    expect(result.err).toBe('');
    expect(result.code).toBe(0);
  });

  it('validate refuses a missing CA file with one located line naming the option, never the path', async () => {
    const missing = join(dir, 'missing-ca.pem');
    const file = writeConfig('missing-ca', { url: certUrl(), ssl: `  ssl:\n    ca: ${missing}\n` });
    const result = await validate(file);
    expect(result.code).toBe(1);
    expect(result.err).toBe(
      `${file}: 1 problem\n  ${file}:8:9: database.ssl.ca: cannot read the certificate file (file not found)\n`,
    );
    // In CI the certificates may exist only where walpurge runs: offline, a warning.
    const offline = await validate(file, '--offline');
    expect(offline.code).toBe(0);
    expect(offline.err).toBe(
      `${file}:8:9: warning: database.ssl.ca: cannot read the certificate file (file not found)\n`,
    );
  });

  it('validate warns about sslmode=no-verify, and connects', async () => {
    const file = writeConfig('no-verify', {
      url: `${certUrl()}?sslmode=no-verify`,
      ssl: `  ssl:\n    cert: ${'${CERT}'}\n    key: ${'${KEY}'}\n`,
    });
    const result = await validate(file);
    expect(result.err).toMatch(
      /warning: database.url: sslmode no-verify: encrypted, but the server's certificate is not checked: anyone on the path can impersonate it; use verify-full with `ca`\n$/,
    );
    expect(result.code).toBe(0);
  });

  const address = (host = '127.0.0.1'): string => `${host}:${postgres.port}/postgres`;

  it.each([
    {
      name: 'wrong CA',
      url: () => certUrl(),
      ssl: () =>
        `  ssl:\n    ca: ${certs.otherCaFile}\n    cert: ${certs.clientCertFile}\n    key: ${certs.clientKeyFile}\n`,
      error: () =>
        `TLS to PostgreSQL at ${address()} failed: the server's certificate is not signed by a trusted CA (SELF_SIGNED_CERT_IN_CHAIN); set database.ssl.ca to the CA (or the provider's bundle) that signed the server's certificate`,
    },
    {
      name: 'hostname mismatch',
      url: () => `postgres://postgres@127.0.0.2:${postgres.port}/postgres`,
      ssl: () => `  ssl:\n    mode: verify-full\n    ca: ${certs.caFile}\n`,
      error: () =>
        `TLS to PostgreSQL at ${address('127.0.0.2')} failed: the server's certificate does not name this host (IP: 127.0.0.2 is not in the cert's list: 127.0.0.1); connect by a name the certificate carries, or set database.ssl.mode to verify-ca (checks the CA only)`,
    },
    {
      name: 'client certificate missing',
      url: () => `${certUrl()}?sslmode=verify-full`,
      ssl: () => `  ssl:\n    ca: ${certs.caFile}\n`,
      error: () =>
        `TLS to PostgreSQL at ${address()} failed: the server refused the login: connection requires a valid client certificate; set database.ssl.cert and database.ssl.key to a client certificate the server accepts`,
    },
  ])('$name: validate and the start fail with one line naming host, reason and fix', async (row) => {
    const file = writeConfig(row.name.replace(/ /g, '-'), { url: row.url(), ssl: row.ssl() });
    const result = await validate(file);
    expect(result.code).not.toBe(0);
    expect(result.err.split('\n')[0]).toBe(`error WP_DATABASE_UNREACHABLE: ${row.error()}`);
    const walpurge = spawnWalpurge(['run', '--config', file, '--role', 'all', '--http-port', '0'], env());
    children.push(walpurge);
    expect(await walpurge.exited).not.toBe(0);
    expect(walpurge.output()).toContain(row.error());
  });

  it('a wrong redis.tls.ca: walpurge run stops at the start with one line instead of retrying forever', async () => {
    const file = writeConfig('cache-wrong-ca', { url: certUrl(), ssl: verifiedWithClientCertificate });
    writeFileSync(
      file,
      readFileSync(file, 'utf8').replace(`ca: ${certs.caFile}`, `ca: ${certs.otherCaFile}`),
    );
    const walpurge = spawnWalpurge(['run', '--config', file, '--role', 'all', '--http-port', '0'], env());
    children.push(walpurge);
    expect(await walpurge.exited).not.toBe(0);
    expect(walpurge.output()).toContain(
      `TLS to the cache Redis at ${cacheRedis.tlsUrl?.replace('rediss://', '')} failed: the server's certificate is not signed by a trusted CA (SELF_SIGNED_CERT_IN_CHAIN); set redis.tls.ca to the CA (or the provider's bundle) that signed the server's certificate`,
    );
  });

  it('TLS to a PostgreSQL without TLS: one line', async () => {
    const plain = await startLocalPostgres();
    try {
      const file = writeConfig('no-tls', { url: `${plain.url}?sslmode=require` });
      const result = await validate(file);
      expect(result.err.split('\n')[0]).toBe(
        `error WP_DATABASE_UNREACHABLE: TLS to PostgreSQL at 127.0.0.1:${plain.port}/postgres failed: the server does not accept TLS (ssl = off); enable TLS on the server, or connect without it`,
      );
    } finally {
      await plain.stop();
    }
  });

  it('the queue Redis: a wrong CA, a missing client certificate, a server without TLS are located problems of validate', async () => {
    const where = queueRedis.tlsUrl?.replace('rediss://', '');
    const queueProblem = async (name: string, tls: string): Promise<string> => {
      const file = writeConfig(
        name,
        { url: certUrl(), ssl: verifiedWithClientCertificate },
        `flusher:\n  queueRedisUrl: ${queueRedis.tlsUrl}\n  queueRedisTls:\n${tls}`,
      );
      const result = await validate(file);
      expect(result.code).toBe(1);
      return result.err.replace(`${file}: 1 problem\n  ${file}:`, '');
    };
    // rediss:// to the plain port of the same server.
    const plainPort = `${queueRedis.tlsUrl?.replace(/:\d+$/, '')}:${queueRedis.port}`;
    const file = writeConfig(
      'queue-no-tls',
      { url: certUrl(), ssl: verifiedWithClientCertificate },
      `flusher:\n  queueRedisUrl: ${plainPort}\n`,
    );
    expect((await validate(file)).err).toBe(
      `${file}: 1 problem\n  ${file}:23:18: flusher.queueRedisUrl: TLS to the queue Redis at 127.0.0.1:${queueRedis.port} failed: no answer within the connect timeout (the host is unreachable, or the port does not speak TLS and waits for more); check that the host and port are reachable and serve TLS\n`,
    );
    expect(await queueProblem('queue-wrong-ca', `    ca: ${certs.otherCaFile}\n`)).toBe(
      `25:5: flusher.queueRedisTls: TLS to the queue Redis at ${where} failed: the server's certificate is not signed by a trusted CA (SELF_SIGNED_CERT_IN_CHAIN); set flusher.queueRedisTls.ca to the CA (or the provider's bundle) that signed the server's certificate\n`,
    );
    // TLS 1.3: the refusal arrives as an alert or, when the client writes first, as a reset.
    expect(await queueProblem('queue-no-client-cert', `    ca: ${certs.caFile}\n`)).toMatch(
      new RegExp(
        `^25:5: flusher\\.queueRedisTls: TLS to the queue Redis at ${where} failed: the server (refused the client certificate \\(\\w+\\)|closed the connection during TLS set-up \\(does it require a client certificate\\?\\)); set flusher\\.queueRedisTls\\.cert and flusher\\.queueRedisTls\\.key to a client certificate the server accepts\n$`,
      ),
    );
  });
});
