import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, formatProblem } from '../config-error.js';
import { parseConfigText } from '../load-config.js';
import type { WalpurgeConfig } from '../schema/index.js';
import { effectiveSslMode, pgConnectionOptions } from './pg-connection.js';

const dir = mkdtempSync(join(tmpdir(), 'walpurge-pg-tls-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const certificate = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
const ca = join(dir, 'ca.pem');
const bundle = join(dir, 'bundle.pem');
const cert = join(dir, 'client.pem');
const key = join(dir, 'client.key');
const notPem = join(dir, 'not-pem.txt');
writeFileSync(ca, certificate);
writeFileSync(bundle, certificate + certificate);
writeFileSync(cert, certificate);
writeFileSync(key, '-----BEGIN PRIVATE KEY-----\nMIGH\n-----END PRIVATE KEY-----\n');
writeFileSync(notPem, 'hello\n');

function parse(database: string): ReturnType<typeof parseConfigText<typeof WalpurgeConfig>> {
  return parseConfigText(`database:\n${database}`, 'walpurge.yaml', { env: {} });
}

function problems(database: string): string[] {
  try {
    parse(database);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems.map((p) => formatProblem('walpurge.yaml', p));
    throw error;
  }
  throw new Error('expected a ConfigError');
}

describe('PostgreSQL TLS options (database.url + database.ssl)', () => {
  it('without TLS settings: no TLS, URL unchanged', () => {
    expect(pgConnectionOptions({ url: 'postgres://u:p@db:5432/app' })).toEqual({
      connectionString: 'postgres://u:p@db:5432/app',
      ssl: false,
    });
  });

  it("gives the URL's sslmode libpq's meaning and takes the TLS parameters out of the URL", () => {
    const require = pgConnectionOptions({ url: 'postgres://u@db/app?sslmode=require&application_name=x' });
    expect(require).toEqual({
      connectionString: 'postgres://u@db/app?application_name=x',
      ssl: { rejectUnauthorized: false },
    });
    const verifyFull = pgConnectionOptions({
      url: `postgres://u@db/app?sslmode=verify-full&sslrootcert=${ca}`,
    });
    expect(verifyFull.connectionString).toBe('postgres://u@db/app');
    expect(verifyFull.ssl).toEqual({ ca: certificate });
  });

  it('verify-ca checks the chain but not the name; never "no verification"', () => {
    const options = pgConnectionOptions({ url: 'postgres://u@db/app', ssl: { mode: 'verify-ca', ca } });
    const ssl = options.ssl as Exclude<typeof options.ssl, false>;
    expect(ssl.rejectUnauthorized).not.toBe(false);
    expect(ssl.ca).toBe(certificate);
    expect(ssl.checkServerIdentity?.('other.host', {} as never)).toBeUndefined();
  });

  it('require with a CA verifies the chain, as libpq does', () => {
    const options = pgConnectionOptions({ url: 'postgres://u@db/app?sslmode=require', ssl: { ca } });
    const ssl = options.ssl as Exclude<typeof options.ssl, false>;
    expect(ssl.rejectUnauthorized).not.toBe(false);
    expect(typeof ssl.checkServerIdentity).toBe('function');
  });

  it('a CA, certificate or key alone means verify-full; a client certificate is read with its key', () => {
    expect(effectiveSslMode({ url: 'postgres://db/app', ssl: { ca } })).toBe('verify-full');
    const options = pgConnectionOptions({ url: 'postgres://db/app', ssl: { ca: bundle, cert, key } });
    expect(options.ssl).toEqual({
      ca: certificate + certificate,
      cert: certificate,
      key: expect.stringContaining('PRIVATE KEY') as unknown,
    });
  });

  it('accepts a TLS config, URL and config agreeing', () => {
    const { config } = parse(
      `  url: postgres://u@db/app?sslmode=verify-full\n  ssl:\n    mode: verify-full\n    ca: ${ca}\n    cert: ${cert}\n    key: ${key}\n`,
    );
    expect(config.database?.ssl).toEqual({ mode: 'verify-full', ca, cert, key });
  });

  it('refuses a URL and config that disagree, naming both', () => {
    expect(problems(`  url: postgres://u@db/app?sslmode=require\n  ssl:\n    mode: verify-full\n`)).toEqual([
      'walpurge.yaml:4:11: database.ssl.mode: database.url says sslmode=require but database.ssl.mode is verify-full: set it in one place',
    ]);
  });

  it('refuses modes that fall back to plain text, verify-ca without a CA, a certificate without a key', () => {
    expect(problems('  url: postgres://u@db/app?sslmode=prefer\n')).toEqual([
      'walpurge.yaml:2:8: database.url: sslmode=prefer is not supported: use disable, require, verify-ca, verify-full (walpurge never falls back to an unencrypted connection)',
    ]);
    expect(problems('  url: postgres://u@db/app\n  ssl:\n    mode: verify-ca\n')).toEqual([
      'walpurge.yaml:4:5: database.ssl.ca: sslmode verify-ca needs a CA (database.ssl.ca or sslrootcert): against the public CAs any certificate they issued would pass',
    ]);
    expect(problems(`  url: postgres://u@db/app\n  ssl:\n    cert: ${cert}\n`)).toEqual([
      'walpurge.yaml:4:5: database.ssl: a client certificate needs both cert (sslcert) and key (sslkey)',
    ]);
  });

  it('refuses a missing or non-PEM file with one located line, never printing a key path', () => {
    const missing = join(dir, 'missing.pem');
    expect(problems(`  url: postgres://u@db/app\n  ssl:\n    ca: ${missing}\n`)).toEqual([
      `walpurge.yaml:4:9: database.ssl.ca: cannot read the certificate file (ENOENT): ${missing}`,
    ]);
    expect(problems(`  url: postgres://u@db/app\n  ssl:\n    ca: ${notPem}\n`)).toEqual([
      `walpurge.yaml:4:9: database.ssl.ca: the certificate file holds no PEM certificate: ${notPem}`,
    ]);
    const keyProblems = problems(
      `  url: postgres://u@db/app\n  ssl:\n    cert: ${cert}\n    key: ${missing}\n`,
    );
    expect(keyProblems).toEqual([
      'walpurge.yaml:5:10: database.ssl.key: cannot read the private key file (ENOENT)',
    ]);
  });
});
