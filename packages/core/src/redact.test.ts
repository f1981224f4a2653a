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
});
