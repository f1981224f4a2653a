import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import kafkajs from 'kafkajs';
import { afterAll, describe, expect, it } from 'vitest';
import { KafkaConfig } from '@walpurge/config';
import { createLogger } from '@walpurge/core';
import { kafkaLogCreator } from './kafka-client.js';
import { kafkaSecrets, moduleTokenProvider, saslOptions, tlsOptions } from './kafka-security.js';

const dir = mkdtempSync(join(tmpdir(), 'walpurge-kafka-security-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

describe('kafka TLS and SASL options', () => {
  it('reads the PEM files once into kafkajs ssl options, with passphrase and servername', () => {
    const ca = file('ca.pem', 'CA PEM');
    const cert = file('cert.pem', 'CERT PEM');
    const key = file('key.pem', 'KEY PEM');
    const config = KafkaConfig.parse({
      brokers: ['k:9093'],
      ssl: { ca, cert, key, passphrase: 'pp', servername: 'kafka.internal' },
    });
    expect(tlsOptions(config.ssl)).toEqual({
      ca: 'CA PEM',
      cert: 'CERT PEM',
      key: 'KEY PEM',
      passphrase: 'pp',
      servername: 'kafka.internal',
      rejectUnauthorized: true,
    });
    expect(tlsOptions(true)).toBe(true);
    expect(tlsOptions(false)).toBe(false);
  });

  it('a file gone since validation fails the start naming the option, not the path', () => {
    const config = KafkaConfig.parse({ brokers: ['k:9093'], ssl: { ca: join(dir, 'gone.pem') } });
    expect(() => tlsOptions(config.ssl)).toThrow(
      'kafka.ssl.ca: cannot read the certificate file (file not found)',
    );
    try {
      tlsOptions(config.ssl);
    } catch (error) {
      expect((error as Error).message).not.toContain('gone.pem');
    }
  });

  it('the token-provider module: its default export gives the token; a wrong module says what is wrong', async () => {
    const good = file('good.mjs', "export default async () => ({ value: 'tok-123' });\n");
    await expect(moduleTokenProvider(good)()).resolves.toEqual({ value: 'tok-123' });
    const noDefault = file('none.mjs', 'export const token = 1;\n');
    await expect(moduleTokenProvider(noDefault)()).rejects.toThrow('has no default export function');
    const wrongShape = file('string.mjs', "export default async () => 'tok';\n");
    await expect(moduleTokenProvider(wrongShape)()).rejects.toThrow('returned no { value: string }');
    const broken = file('broken-import.mjs', "import 'walpurge-no-such-package';\n");
    const failure = await moduleTokenProvider(broken)().then(
      () => undefined,
      (error: unknown) => (error as Error).message,
    );
    expect(failure).toMatch(
      /^kafka\.sasl\.tokenProvider: cannot import the module: .*walpurge-no-such-package/,
    );
    expect(failure).not.toContain(dir);
  });

  it('a programmatic provider wins over the module, and alone selects OAUTHBEARER', async () => {
    const provider = async () => ({ value: 'from-code' });
    expect(saslOptions(undefined, provider)).toEqual({
      mechanism: 'oauthbearer',
      oauthBearerProvider: provider,
    });
    const sasl = saslOptions({ mechanism: 'oauthbearer', tokenProvider: '/nowhere.mjs' }, provider);
    expect(sasl?.mechanism === 'oauthbearer' && (await sasl.oauthBearerProvider())).toEqual({
      value: 'from-code',
    });
    expect(saslOptions({ mechanism: 'scram-sha-512', username: 'u', password: 'p' }, undefined)).toEqual({
      mechanism: 'scram-sha-512',
      username: 'u',
      password: 'p',
    });
    expect(() => saslOptions({ mechanism: 'plain', username: 'u', password: 'p' }, provider)).toThrow(
      'an oauthBearerProvider was given but kafka.sasl.mechanism is plain',
    );
  });
});

describe("kafkajs's log lines", () => {
  it('carry no password, passphrase, key path or token, in the message or the fields', () => {
    const lines: string[] = [];
    const destination = new Writable({
      write(chunk: Buffer, _encoding, callback) {
        lines.push(chunk.toString('utf8'));
        callback();
      },
    });
    const config = KafkaConfig.parse({
      brokers: ['k:9093'],
      ssl: {
        ca: '/etc/kafka/ca.pem',
        cert: '/etc/kafka/client.pem',
        key: '/etc/kafka/client.key',
        passphrase: 'key-pass-9',
      },
      sasl: { mechanism: 'plain', username: 'app', password: 'sasl-pass-7' },
    });
    const secrets = new Set([...kafkaSecrets(config), 'eyJ.token.value']);
    const log = kafkaLogCreator(createLogger({ destination, level: 'trace' }), secrets)();
    log({
      namespace: 'Connection',
      level: kafkajs.logLevel.ERROR,
      label: 'ERROR',
      log: {
        timestamp: 'now',
        message: 'failed with sasl-pass-7 reading /etc/kafka/client.key',
        error: 'bearer eyJ.token.value refused; passphrase key-pass-9',
        files: ['/etc/kafka/ca.pem', '/etc/kafka/client.pem'],
        broker: 'k:9093',
      },
    });
    const output = lines.join('');
    expect(lines).toHaveLength(1);
    for (const secret of secrets) expect(output).not.toContain(secret);
    expect(output).toContain('k:9093');
    expect(output).toContain('[redacted]');
  });
});
