import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError } from './config-error.js';
import { parseConfigText } from './load-config.js';
import { tlsFileProblems } from './tls-files.js';

const dir = mkdtempSync(join(tmpdir(), 'walpurge-tls-files-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const configFile = join(dir, 'walpurge.yaml');
const CERT = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
const KEY = '-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n';
writeFileSync(join(dir, 'ca.pem'), CERT);
writeFileSync(join(dir, 'client.pem'), CERT);
writeFileSync(join(dir, 'client.key'), KEY);
writeFileSync(join(dir, 'token.mjs'), 'export default async () => ({ value: "t" });\n');

function parse(kafka: string, options: { tlsFiles?: 'check' | 'skip' } = {}) {
  return parseConfigText(`transport: kafka\nkafka:\n  brokers: ['k:9093']\n${kafka}`, configFile, {
    env: {},
    ...options,
  });
}

function problems(kafka: string): string[] {
  try {
    parse(kafka);
  } catch (error) {
    if (error instanceof ConfigError)
      return error.problems.map((p) => `${p.line ?? '?'}: ${p.path}: ${p.message}`);
    throw error;
  }
  return [];
}

describe('TLS files and the Kafka token provider in the config', () => {
  it('resolves paths against the config file directory', () => {
    const { config } = parse(
      '  ssl:\n    ca: ca.pem\n    cert: ./client.pem\n    key: client.key\n  sasl:\n    mechanism: oauthbearer\n    tokenProvider: token.mjs\n',
    );
    expect(config.kafka?.ssl).toEqual({
      ca: join(dir, 'ca.pem'),
      cert: join(dir, 'client.pem'),
      key: join(dir, 'client.key'),
      rejectUnauthorized: true,
    });
    expect(config.kafka?.sasl).toEqual({ mechanism: 'oauthbearer', tokenProvider: join(dir, 'token.mjs') });
  });

  it('keeps ssl: true (system CAs) and false', () => {
    expect(parse('  ssl: true\n').config.kafka?.ssl).toBe(true);
    expect(parse('').config.kafka?.ssl).toBe(false);
  });

  it('refuses unreadable, non-PEM and mismatched files, each with its line', () => {
    writeFileSync(join(dir, 'notes.txt'), 'hello');
    expect(problems('  ssl:\n    ca: missing.pem\n    cert: notes.txt\n    key: client.pem\n')).toEqual([
      '5: kafka.ssl.ca: cannot read the certificate file (file not found)',
      '6: kafka.ssl.cert: the certificate file holds no PEM certificate',
      '7: kafka.ssl.key: the private key file holds a PEM CERTIFICATE, not a private key',
    ]);
    // The module may hold a secret's location: the option names it, its path is not printed.
    expect(problems('  sasl:\n    mechanism: oauthbearer\n    tokenProvider: nope.mjs\n')).toEqual([
      '6: kafka.sasl.tokenProvider: cannot read the token provider module (file not found)',
    ]);
    expect(problems('  sasl:\n    mechanism: oauthbearer\n    tokenProvider: .\n')).toEqual([
      '6: kafka.sasl.tokenProvider: cannot read the token provider module (EISDIR)',
    ]);
  });

  it('accepts a key after EC PARAMETERS, and combined key and certificate files in either order', () => {
    const EC_PARAMS = '-----BEGIN EC PARAMETERS-----\nBggq\n-----END EC PARAMETERS-----\n';
    const EC_KEY = '-----BEGIN EC PRIVATE KEY-----\nMHcC\n-----END EC PRIVATE KEY-----\n';
    writeFileSync(join(dir, 'ec.key'), EC_PARAMS + EC_KEY);
    writeFileSync(join(dir, 'cert-then-key.pem'), CERT + KEY);
    writeFileSync(join(dir, 'key-then-cert.pem'), KEY + CERT);
    expect(problems('  ssl:\n    cert: key-then-cert.pem\n    key: ec.key\n')).toEqual([]);
    expect(problems('  ssl:\n    cert: cert-then-key.pem\n    key: cert-then-key.pem\n')).toEqual([]);
    expect(problems('  ssl:\n    ca: ec.key\n')).toEqual([
      '5: kafka.ssl.ca: the certificate file holds a PEM EC PARAMETERS and EC PRIVATE KEY, not a certificate',
    ]);
  });

  it('leaves the files of a section the role never reads unchecked (a flusher pod)', () => {
    const text = 'transport: kafka\nkafka:\n  brokers: [k:9093]\n  ssl:\n    ca: missing.pem\n';
    expect(() => parseConfigText(text, configFile, { env: {} })).toThrow(ConfigError);
    const { config } = parseConfigText(text, configFile, { env: {}, unusedSections: new Set(['kafka']) });
    expect(config.kafka?.ssl).toEqual({ ca: join(dir, 'missing.pem'), rejectUnauthorized: true });
  });

  it('leaves the files to the caller with tlsFiles: skip (explain, validate)', () => {
    const { config } = parse(
      '  ssl:\n    ca: missing.pem\n  sasl:\n    mechanism: oauthbearer\n    tokenProvider: nope.mjs\n',
      {
        tlsFiles: 'skip',
      },
    );
    expect(tlsFileProblems(config).map((p) => [p.path.join('.'), p.message])).toEqual([
      ['kafka.ssl.ca', 'cannot read the certificate file (file not found)'],
      ['kafka.sasl.tokenProvider', 'cannot read the token provider module (file not found)'],
    ]);
    expect(tlsFileProblems(config, new Set(['kafka']))).toEqual([]);
  });

  it('accepts an encrypted key only where a passphrase option exists (kafka.ssl.key, not redis.tls.key)', () => {
    const ENCRYPTED = '-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIF\n-----END ENCRYPTED PRIVATE KEY-----\n';
    const LEGACY =
      '-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-256-CBC,00\n\nMIIE\n-----END RSA PRIVATE KEY-----\n';
    writeFileSync(join(dir, 'encrypted.key'), ENCRYPTED);
    writeFileSync(join(dir, 'legacy.key'), LEGACY);
    expect(problems('  ssl:\n    cert: client.pem\n    key: encrypted.key\n    passphrase: s\n')).toEqual([]);
    expect(problems('  ssl:\n    cert: client.pem\n    key: legacy.key\n    passphrase: s\n')).toEqual([]);
    const redis = (key: string): string[] =>
      tlsFileProblems({
        redis: { url: 'rediss://r:6380', tls: { cert: join(dir, 'client.pem'), key: join(dir, key) } },
      } as Parameters<typeof tlsFileProblems>[0]).map((p) => `${p.path.join('.')}: ${p.message}`);
    const refusal =
      'redis.tls.key: the private key file is encrypted and walpurge takes no passphrase: decrypt it (openssl pkey -in <file> -out <new file>)';
    expect(redis('encrypted.key')).toEqual([refusal]);
    expect(redis('legacy.key')).toEqual([refusal]);
  });

  it('refuses a cert without its key, and SASL without username or password', () => {
    expect(problems('  ssl:\n    cert: client.pem\n')).toEqual([
      '5: kafka.ssl: cert and key go together: give both for mTLS, or neither',
    ]);
    expect(problems('  sasl:\n    mechanism: scram-sha-256\n    username: app\n')).toEqual([
      '5: kafka.sasl.password: password is required for mechanism scram-sha-256',
    ]);
    expect(problems("  sasl:\n    mechanism: plain\n    username: ''\n    password: p\n")).toEqual([
      '6: kafka.sasl.username: username is required for mechanism plain',
    ]);
  });
});
