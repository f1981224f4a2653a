import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from './logger.js';
import { REDACTED, redactDeep, redactSecrets } from './redact.js';

function captureLogger() {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      lines.push(chunk.toString('utf8'));
      callback();
    },
  });
  return { logger: createLogger({ destination, level: 'trace' }), lines };
}

describe('secret redaction', () => {
  it('masks passwords inside connection URLs and token query parameters', () => {
    expect(redactSecrets('postgres://walpurge:s3cr3t@db:5432/app')).toBe(
      `postgres://walpurge:${REDACTED}@db:5432/app`,
    );
    expect(redactSecrets('rediss://:hunter2@cache:6380')).toBe(`rediss://:${REDACTED}@cache:6380`);
    expect(redactSecrets('https://api.example.com/purge?token=abc123&x=1')).toBe(
      `https://api.example.com/purge?token=${REDACTED}&x=1`,
    );
    expect(redactSecrets('redis://cache:6379/0')).toBe('redis://cache:6379/0');
  });

  it('masks secret-named keys at any depth but keeps the rest', () => {
    const out = redactDeep({ cdn: { apiToken: 'tok', zoneId: 'z1' }, list: [{ password: 'p' }] });
    expect(out).toEqual({ cdn: { apiToken: REDACTED, zoneId: 'z1' }, list: [{ password: REDACTED }] });
  });

  it('masks the files and passphrase of TLS settings (kafka.ssl), not its other fields', () => {
    const ssl = {
      ca: '/etc/ca.pem',
      cert: '/etc/c.pem',
      key: '/etc/k.pem',
      passphrase: 'pp',
      servername: 'k',
    };
    expect(redactDeep({ kafka: { ssl, brokers: ['k:9093'] } })).toEqual({
      kafka: {
        ssl: { ca: REDACTED, cert: REDACTED, key: REDACTED, passphrase: REDACTED, servername: 'k' },
        brokers: ['k:9093'],
      },
    });
    expect(redactDeep({ ssl: true })).toEqual({ ssl: true });
    // A Redis cache key named `key` elsewhere is not a TLS file.
    expect(redactDeep({ key: 'item:1' })).toEqual({ key: 'item:1' });
  });

  it('never writes a secret to the log stream: fields, messages, nested config and errors', () => {
    const { logger, lines } = captureLogger();
    const url = 'postgres://app:Pa55w0rd!@db.internal:5432/app';
    logger.info({ databaseUrl: url, cdn: { cloudflare: { apiToken: 'cf-T0KEN' } } }, `connecting to ${url}`);
    logger.child({ component: 'listener' }).error({ err: new Error(`connect failed for ${url}`) }, 'failed');
    const output = lines.join('');
    expect(lines).toHaveLength(2);
    expect(output).not.toContain('Pa55w0rd!');
    expect(output).not.toContain('cf-T0KEN');
    expect(output).toContain('db.internal:5432');
    expect(output).toContain('"component":"listener"');
  });

  it("masks TLS key material and the TLS files' paths, but keeps cache keys", () => {
    const config = {
      database: {
        url: 'postgres://app:Pa55@db:5432/app?sslmode=verify-full&sslkey=/etc/walpurge/client.key&sslrootcert=/etc/walpurge/ca.pem&sslcert=/etc/walpurge/client.pem',
        ssl: { mode: 'verify-full', ca: '/etc/walpurge/ca.pem', cert: '/etc/c.pem', key: '/etc/k.pem' },
      },
      redis: { tls: { ca: '/etc/rca.pem', key: '/etc/rk.pem', passphrase: 'pp' } },
      flusher: { queueRedisTls: { key: '/etc/qk.pem' } },
      purge: { key: 'user:1' },
    };
    expect(redactDeep(config)).toEqual({
      database: {
        url: `postgres://app:${REDACTED}@db:5432/app?sslmode=verify-full&sslkey=${REDACTED}&sslrootcert=${REDACTED}&sslcert=${REDACTED}`,
        ssl: { mode: 'verify-full', ca: REDACTED, cert: REDACTED, key: REDACTED },
      },
      redis: { tls: { ca: REDACTED, key: REDACTED, passphrase: REDACTED } },
      flusher: { queueRedisTls: { key: REDACTED } },
      purge: { key: 'user:1' },
    });
  });

  it('masks PEM private keys wherever they appear in text', () => {
    const pem = '-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBg\n-----END PRIVATE KEY-----';
    const rsa = '-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----';
    expect(redactSecrets(`key: ${pem} cert follows`)).toBe(`key: ${REDACTED} cert follows`);
    expect(redactSecrets(rsa)).toBe(REDACTED);
    // Cut short (a truncated log line): everything from the header on.
    expect(redactSecrets('x -----BEGIN EC PRIVATE KEY-----\nMHcCAQEE')).toBe(`x ${REDACTED}`);
    const certificate = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----';
    expect(redactSecrets(certificate)).toBe(certificate);
  });

  it('never logs the key of a TLS options object handed to a driver', () => {
    const { logger, lines } = captureLogger();
    const key = '-----BEGIN PRIVATE KEY-----\nS3CRETKEYBYTES\n-----END PRIVATE KEY-----';
    logger.warn({ ssl: { ca: 'CA', key }, tls: { key: '/run/secrets/redis.key' } }, 'connecting');
    logger.error({ err: new Error(`bad key ${key}`) }, 'failed');
    const output = lines.join('');
    expect(output).not.toContain('S3CRETKEYBYTES');
    expect(output).not.toContain('/run/secrets/redis.key');
    expect(output).not.toContain('"ca":"CA"');
  });
});
