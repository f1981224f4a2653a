import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, formatProblem } from '../config-error.js';
import { parseConfigText } from '../load-config.js';
import type { WalpurgeConfig } from '../schema/index.js';
import { tlsFileProblems } from '../tls-files.js';
import { databaseSslWarning, effectiveSslMode, pgConnectionOptions } from './pg-connection.js';

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
  return parseConfigText(`database:\n${database}`, 'walpurge.yaml', { env: {}, tlsFiles: 'skip' });
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

  it('require verifies the chain and the host name, as node-postgres does; the TLS parameters leave the URL', () => {
    const require = pgConnectionOptions({ url: 'postgres://u@db/app?sslmode=require&application_name=x' });
    expect(require).toEqual({ connectionString: 'postgres://u@db/app?application_name=x', ssl: {} });
    const withCa = pgConnectionOptions({ url: 'postgres://u@db/app', ssl: { mode: 'require', ca } });
    expect(withCa.ssl).toEqual({ ca: certificate });
    const verifyFull = pgConnectionOptions({
      url: `postgres://u@db/app?sslmode=verify-full&sslrootcert=${ca}`,
    });
    expect(verifyFull.connectionString).toBe('postgres://u@db/app');
    expect(verifyFull.ssl).toEqual({ ca: certificate });
    expect(databaseSslWarning({ url: 'postgres://u@db/app?sslmode=require' })).toBeUndefined();
  });

  it('no-verify encrypts without checking, and says so', () => {
    for (const url of ['postgres://u@db/app?sslmode=no-verify', 'postgres://u@db/app?ssl=no-verify']) {
      expect(pgConnectionOptions({ url }).ssl).toEqual({ rejectUnauthorized: false });
      expect(databaseSslWarning({ url })).toMatch(/anyone on the path can impersonate it/);
    }
    expect(pgConnectionOptions({ url: 'postgres://db/app', ssl: { mode: 'no-verify' } }).ssl).toEqual({
      rejectUnauthorized: false,
    });
  });

  it("maps node-postgres' ssl= values and refuses any other", () => {
    expect(pgConnectionOptions({ url: 'postgres://db/app?ssl=true' }).ssl).toEqual({});
    expect(pgConnectionOptions({ url: 'postgres://db/app?ssl=1' }).ssl).toEqual({});
    expect(pgConnectionOptions({ url: 'postgres://db/app?ssl=0' }).ssl).toBe(false);
    expect(pgConnectionOptions({ url: 'postgres://db/app?ssl=false' }).ssl).toBe(false);
    expect(problems('  url: postgres://u@db/app?ssl=yes\n')).toEqual([
      'walpurge.yaml:2:8: database.url: ssl=yes is not supported: use true, 1 (verify-full), no-verify, false or 0 (no TLS)',
    ]);
  });

  it('keeps TLS for a URL without a host before the path (host in the query), as node-postgres parses it', () => {
    const options = pgConnectionOptions({
      url: 'postgres://u@/app?host=db.example.com&sslmode=verify-full',
      ssl: { ca },
    });
    expect(options).toEqual({
      connectionString: 'postgres://u@/app?host=db.example.com',
      ssl: { ca: certificate },
    });
  });

  it('refuses TLS settings for a URL it cannot read, instead of dropping them', () => {
    expect(problems(`  url: postgres://u@db:port/app\n  ssl:\n    ca: ${ca}\n`)).toEqual([
      'walpurge.yaml:2:8: database.url: cannot be read as a URL, so database.ssl cannot apply to it: fix the URL',
    ]);
  });

  it('refuses sslnegotiation=direct (it would replace the TLS options)', () => {
    expect(problems('  url: postgres://u@db/app?sslnegotiation=direct\n')).toEqual([
      'walpurge.yaml:2:8: database.url: sslnegotiation=direct is not supported: remove it (walpurge starts TLS with the usual SSLRequest)',
    ]);
    expect(pgConnectionOptions({ url: 'postgres://db/app?sslnegotiation=postgres' }).connectionString).toBe(
      'postgres://db/app',
    );
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

  it('a file gone at a reconnect fails with one non-retriable line naming the option, never its path', () => {
    const gone = join(dir, 'rotated-away.pem');
    const read = (connection: Parameters<typeof pgConnectionOptions>[0]): unknown => {
      try {
        pgConnectionOptions(connection);
      } catch (error) {
        return error;
      }
      return undefined;
    };
    expect(read({ url: 'postgres://db/app', ssl: { ca: gone } })).toMatchObject({
      code: 'WP_CONFIG_INVALID',
      retriable: false,
      message: 'database.ssl.ca: cannot read the certificate file (file not found)',
    });
    expect(read({ url: `postgres://db/app?sslrootcert=${gone}` })).toMatchObject({
      message: 'database.url sslrootcert: cannot read the certificate file (file not found)',
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
      'walpurge.yaml:2:8: database.url: sslmode=prefer is not supported: use disable, no-verify, require, verify-ca, verify-full (walpurge never falls back to an unencrypted connection)',
    ]);
    expect(problems('  url: postgres://u@db/app\n  ssl:\n    mode: verify-ca\n')).toEqual([
      'walpurge.yaml:4:5: database.ssl.ca: sslmode verify-ca needs a CA (database.ssl.ca or sslrootcert): against the public CAs any certificate they issued would pass',
    ]);
    expect(problems(`  url: postgres://u@db/app\n  ssl:\n    cert: ${cert}\n`)).toEqual([
      'walpurge.yaml:4:5: database.ssl: a client certificate needs both cert (sslcert) and key (sslkey)',
    ]);
  });

  it('checks the files apart from parsing: missing or non-PEM files, with their field, never a path', () => {
    const missing = join(dir, 'missing.pem');
    const fileProblems = (database: string): string[] =>
      tlsFileProblems(parse(database).config).map((p) => `${p.path.join('.')}: ${p.message}`);
    expect(fileProblems(`  url: postgres://u@db/app\n  ssl:\n    ca: ${missing}\n`)).toEqual([
      'database.ssl.ca: cannot read the certificate file (file not found)',
    ]);
    expect(fileProblems(`  url: postgres://u@db/app\n  ssl:\n    ca: ${notPem}\n`)).toEqual([
      'database.ssl.ca: the certificate file holds no PEM certificate',
    ]);
    expect(
      fileProblems(`  url: postgres://u@db/app\n  ssl:\n    cert: ${cert}\n    key: ${missing}\n`),
    ).toEqual(['database.ssl.key: cannot read the private key file (file not found)']);
  });

  it('refuses those files when parsing for a start, with one located line', () => {
    const missing = join(dir, 'missing.key');
    expect(() =>
      parseConfigText(
        `database:\n  url: postgres://u@db/app?sslcert=${cert}&sslkey=${missing}\n`,
        'walpurge.yaml',
        {
          env: {},
        },
      ),
    ).toThrow(
      /walpurge.yaml:2:8: database.url: sslkey: cannot read the private key file \(file not found\)$/,
    );
  });

  it("checks the URL's sslrootcert, sslcert and sslkey at `url`, never printing a path", () => {
    const missing = join(dir, 'missing.key');
    const url = `postgres://u@db/app?sslrootcert=${notPem}&sslcert=${cert}&sslkey=${missing}`;
    expect(
      tlsFileProblems({ database: parse(`  url: ${url}\n`).config.database }).map((p) => [
        p.path.join('.'),
        p.message,
      ]),
    ).toEqual([
      ['database.url', 'sslrootcert: the certificate file holds no PEM certificate'],
      ['database.url', 'sslkey: cannot read the private key file (file not found)'],
    ]);
  });

  it('refuses an encrypted private key: there is no passphrase option', () => {
    const encrypted = join(dir, 'encrypted.key');
    writeFileSync(
      encrypted,
      '-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIGH\n-----END ENCRYPTED PRIVATE KEY-----\n',
    );
    const { config } = parse(
      `  url: postgres://u@db/app\n  ssl:\n    cert: ${cert}\n    key: ${encrypted}\n`,
    );
    expect(tlsFileProblems(config).map((p) => p.message)).toEqual([
      'the private key file is encrypted and walpurge takes no passphrase: decrypt it (openssl pkey -in <file> -out <new file>)',
    ]);
  });

  it("parses without reading the files; relative paths resolve against the config file's directory", () => {
    const { config } = parseConfigText(
      'database:\n  url: postgres://u@db/app\n  ssl:\n    ca: certs/ca.pem\nredis:\n  url: rediss://r:6380\n  tls:\n    ca: ../ca.pem\n',
      '/etc/walpurge/walpurge.yaml',
      { env: {}, tlsFiles: 'skip' },
    );
    expect(config.database?.ssl?.ca).toBe('/etc/walpurge/certs/ca.pem');
    expect(config.redis?.tls?.ca).toBe('/etc/ca.pem');
  });
});
