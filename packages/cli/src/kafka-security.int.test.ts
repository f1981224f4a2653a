import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  createIsolatedDatabase,
  freePort,
  makeKafkaCertificates,
  startLocalKafka,
  uniqueName,
  waitFor,
  type IsolatedDatabase,
  type KafkaCertificates,
  type LocalKafka,
  type SecuredListeners,
} from '@walpurge/testing';
import { runCli } from './cli.js';
import { captureIo } from './testing/capture-io.js';
import { spawnWalpurge, waitUntilReady } from './testing/walpurge-process.js';

/**
 * walpurge against a broker with TLS, mTLS and SASL listeners (its own JVM, one for the file): for
 * each, a real `walpurge run` process carries a change listener → Kafka → invalidator → Redis, and
 * its logs (at debug, kafkajs's lines included) hold no password, token or key path.
 */
const services = inject('services');
const name = uniqueName('kafka_sec');
const dir = mkdtempSync(join(tmpdir(), 'walpurge-kafka-sec-'));
const user = 'walpurge';
const password = `sasl-${uniqueName('pw')}`;
let certificates: KafkaCertificates;
let broker: LocalKafka;
let secured: SecuredListeners;
let database: IsolatedDatabase;
let db: pg.Client;
let cache: Redis;

/** An unsigned JWT, what Kafka's default (unsecured) OAUTHBEARER validator accepts. */
const TOKEN_MODULE = `const part = (value) => Buffer.from(JSON.stringify(value)).toString('base64url');
export default async () => {
  const now = Math.floor(Date.now() / 1000);
  return { value: \`\${part({ alg: 'none' })}.\${part({ sub: 'walpurge', iat: now, exp: now + 3600 })}.\` };
};
`;

beforeAll(async () => {
  certificates = await makeKafkaCertificates();
  [broker, database] = await Promise.all([
    startLocalKafka({ security: { certificates, users: [{ username: user, password }] } }),
    createIsolatedDatabase(services.databaseUrl, 'kafka_sec'),
  ]);
  if (!broker.secured) throw new Error('the broker has no secured listeners');
  secured = broker.secured;
  copyFileSync(certificates.caFile, join(dir, 'ca.pem'));
  writeFileSync(join(dir, 'token.mjs'), TOKEN_MODULE);
  db = new pg.Client({ connectionString: database.url });
  await db.connect();
  await db.query('CREATE TABLE items (id int PRIMARY KEY, value text NOT NULL)');
  cache = new Redis(services.redisUrl);
});

afterAll(async () => {
  await db?.end().catch(() => {});
  const keys = await cache?.keys(`${name}:*`).catch(() => [] as string[]);
  if (keys && keys.length > 0) await cache.unlink(...keys);
  cache?.disconnect();
  await database?.drop();
  await broker?.stop();
  await certificates?.remove();
  rmSync(dir, { recursive: true, force: true });
});

type Security = (listeners: SecuredListeners) => { broker: string; yaml: string };

const MODES: Array<[string, Security]> = [
  ['TLS with a CA file', (l) => ({ broker: l.ssl, yaml: 'ssl:\n    ca: ca.pem' })],
  [
    'mTLS with a client certificate',
    (l) => ({
      broker: l.mtls,
      yaml: `ssl:\n    ca: ${certificates.caFile}\n    cert: ${certificates.clientCertFile}\n    key: ${certificates.clientKeyFile}`,
    }),
  ],
  ...(['plain', 'scram-sha-256', 'scram-sha-512'] as const).map((mechanism): [string, Security] => [
    `SASL ${mechanism}`,
    (l) => ({
      broker: l.sasl,
      yaml: `sasl:\n    mechanism: ${mechanism}\n    username: ${user}\n    password: \${KAFKA_PASSWORD}`,
    }),
  ]),
  [
    'SASL oauthbearer through the token-provider module',
    (l) => ({ broker: l.sasl, yaml: 'sasl:\n    mechanism: oauthbearer\n    tokenProvider: ./token.mjs' }),
  ],
];

function writeConfig(id: string, security: { broker: string; yaml: string }): string {
  const file = join(dir, `${id}.yaml`);
  writeFileSync(
    file,
    `transport: kafka
database:
  url: \${DATABASE_URL}
  slot: ${id}
  publication: ${id}
kafka:
  brokers: ['${security.broker}']
  topic: ${id}.changes
  deadLetterTopic: ${id}.dlq
  cdnTopic: ${id}.cdn
  consumerGroup: ${id}
  partitions: 1
  ${security.yaml}
redis:
  url: \${REDIS_URL}
  keyPrefix: '${name}:${id}:'
rules:
  - table: public.items
    redis:
      keys: ['item:{id}']
`,
  );
  return file;
}

const env = (): Record<string, string> => ({
  DATABASE_URL: database.url,
  REDIS_URL: services.redisUrl,
  KAFKA_PASSWORD: password,
});

describe('Kafka security: a real change through a secured broker', () => {
  MODES.forEach(([mode, security], index) => {
    it(`${mode}: listener → Kafka → invalidator → Redis purge, no secret in the logs`, async () => {
      const id = `${name}_${index}`;
      const config = writeConfig(id, security(secured));
      const port = await freePort();
      const walpurge = spawnWalpurge(
        ['run', '--config', config, '--http-port', String(port), '--log-level', 'debug'],
        env(),
      );
      try {
        await waitUntilReady(port, walpurge, 60_000);
        const key = `${name}:${id}:item:${index}`;
        await cache.set(key, 'stale');
        await db.query('INSERT INTO items (id, value) VALUES ($1, $2)', [index, mode]);
        await waitFor(`${key} purged`, async () => (await cache.exists(key)) === 0, { timeoutMs: 30_000 });
      } finally {
        walpurge.child.kill('SIGTERM');
        await walpurge.exited;
      }
      const output = walpurge.output();
      expect(output).toContain('kafkajs');
      for (const secret of [
        password,
        certificates.clientKeyFile,
        certificates.clientCertFile,
        certificates.caFile,
        'token.mjs',
      ])
        expect(output).not.toContain(secret);
      // The token itself: its payload part, which no other text carries.
      expect(output).not.toMatch(/eyJzdWIiOiJ3YWxwdXJnZS/);
    });
  });
});

/** `walpurge validate` of a config with only a kafka section (no database: no live database checks). */
async function validate(
  kafkaYaml: string,
  ...flags: string[]
): Promise<{ code: number; out: string; err: string }> {
  const file = join(dir, `${uniqueName('validate')}.yaml`);
  writeFileSync(file, `transport: kafka\nkafka:\n  ${kafkaYaml}\n`);
  const io = captureIo(env());
  const code = await runCli(['validate', '--config', file, ...flags], io);
  return { code, out: io.out(), err: io.err() };
}

describe('Kafka security: refusals as one line naming the broker and the reason', () => {
  it('validate passes a good secured config', async () => {
    const result = await validate(
      `brokers: ['${secured.mtls}']\n  ssl:\n    ca: ca.pem\n    cert: ${certificates.clientCertFile}\n    key: ${certificates.clientKeyFile}`,
    );
    expect(result.err).toBe('');
    expect(result.code).toBe(0);
    expect(result.out).toMatch(/OK/);
  });

  const cases: Array<[string, () => string, RegExp]> = [
    [
      'a CA that did not sign the broker certificate',
      () => `brokers: ['${secured.ssl}']\n  ssl:\n    ca: ${certificates.otherCaFile}`,
      /not signed by a trusted CA.*kafka\.ssl\.ca/,
    ],
    [
      'a host name the certificate does not carry',
      () => `brokers: ['${secured.ssl}']\n  ssl:\n    ca: ca.pem\n    servername: kafka.example.com`,
      /does not name this host.*kafka\.ssl\.servername/,
    ],
    [
      'a wrong SASL password',
      () =>
        `brokers: ['${secured.sasl}']\n  sasl:\n    mechanism: scram-sha-512\n    username: ${user}\n    password: wrong-${password}`,
      /SASL: authentication failed.*kafka\.sasl\.password/,
    ],
    [
      'a mechanism the listener does not enable',
      () =>
        `brokers: ['${secured.saslPlainOnly}']\n  sasl:\n    mechanism: scram-sha-512\n    username: ${user}\n    password: ${password}`,
      /SASL: the broker does not offer this mechanism.*kafka\.sasl\.mechanism/,
    ],
    [
      'no client certificate on the mTLS listener',
      () => `brokers: ['${secured.mtls}']\n  ssl:\n    ca: ca.pem`,
      /refused the client certificate.*kafka\.ssl\.cert/,
    ],
    [
      'TLS to a plaintext listener',
      () => `brokers: ['${broker.brokers[0] ?? ''}']\n  ssl:\n    ca: ca.pem`,
      /closed the connection during the TLS handshake.*kafka\.ssl: false/,
    ],
  ];
  for (const [what, kafkaYaml, reason] of cases) {
    it(`validate refuses ${what}`, async () => {
      const yaml = kafkaYaml();
      const broker = /brokers: \['([^']+)'\]/.exec(yaml)?.[1] ?? '';
      const result = await validate(yaml);
      expect(result.code).toBe(1);
      const lines = result.err.split('\n').filter((line) => line.includes('cannot connect to Kafka at'));
      expect(lines, result.err).toHaveLength(1);
      expect(lines[0]).toContain(`cannot connect to Kafka at ${broker}: `);
      expect(lines[0]).toMatch(reason);
      expect(result.err).not.toContain(password);
    });
  }

  it('validate refuses a key file that is not a PEM key, with its line', async () => {
    const result = await validate(
      `brokers: ['${secured.mtls}']\n  ssl:\n    ca: ca.pem\n    cert: ${certificates.clientCertFile}\n    key: ${certificates.clientCertFile}`,
    );
    expect(result.code).toBe(1);
    expect(result.err).toMatch(
      /:7:\d+: kafka\.ssl\.key: the private key file holds a PEM CERTIFICATE, not a private key\n/,
    );
    // The brokers are not tried with a file that cannot serve; the key's path is never printed.
    expect(result.err).not.toContain('cannot connect to Kafka');
    expect(result.err).not.toContain(certificates.clientCertFile);
    // In CI the certificates may exist only where walpurge runs: offline, a warning.
    const offline = await validate(
      `brokers: ['${secured.mtls}']\n  ssl:\n    ca: ca.pem\n    cert: ${certificates.clientCertFile}\n    key: ${certificates.clientCertFile}`,
      '--offline',
    );
    expect(offline.code).toBe(0);
    expect(offline.err).toMatch(
      /:7:\d+: warning: kafka\.ssl\.key: the private key file holds a PEM CERTIFICATE/,
    );
  });

  it('validate warns about kafka.ssl.rejectUnauthorized: false, and refuses it next to a ca', async () => {
    const unchecked = await validate(`brokers: ['${secured.ssl}']\n  ssl:\n    rejectUnauthorized: false`);
    expect(unchecked.code, unchecked.err).toBe(0);
    expect(unchecked.err).toMatch(
      /:\d+:\d+: warning: kafka\.ssl\.rejectUnauthorized: kafka\.ssl\.rejectUnauthorized: false: encrypted, but the brokers' certificates are not checked/,
    );
    const both = await validate(
      `brokers: ['${secured.ssl}']\n  ssl:\n    ca: ca.pem\n    rejectUnauthorized: false`,
      '--offline',
    );
    expect(both.code).toBe(1);
    expect(both.err).toMatch(
      /:\d+:\d+: kafka\.ssl\.rejectUnauthorized: rejectUnauthorized: false checks no certificate: remove ca, or remove rejectUnauthorized/,
    );
  });

  // Helm and Kubernetes run each role alone: a listener must stop on a refusal too, not retry it.
  for (const role of ['listener', 'invalidator'] as const) {
    it(`walpurge run --role ${role} with a wrong password exits 1 with the one line`, async () => {
      const id = `${name}_badpw_${role}`;
      const config = writeConfig(id, {
        broker: secured.sasl,
        yaml: `sasl:\n    mechanism: plain\n    username: ${user}\n    password: not-the-password`,
      });
      const io = captureIo(env());
      const port = String(await freePort());
      const code = await runCli(
        ['run', '--role', role, '--config', config, '--http-port', port, '--log-level', 'silent'],
        io,
      );
      expect(code).toBe(1);
      expect(io.err()).toMatch(
        new RegExp(`cannot connect to Kafka at ${secured.sasl}: SASL: authentication failed`),
      );
    }, 60_000);
  }

  it('walpurge run with a wrong password stops at start with the one line', async () => {
    const id = `${name}_badpw`;
    const config = writeConfig(id, {
      broker: secured.sasl,
      yaml: `sasl:\n    mechanism: plain\n    username: ${user}\n    password: not-the-password`,
    });
    const io = captureIo(env());
    const port = String(await freePort());
    const code = await runCli(['run', '--config', config, '--http-port', port, '--log-level', 'silent'], io);
    expect(code).toBe(1);
    expect(io.err()).toMatch(
      new RegExp(`cannot connect to Kafka at ${secured.sasl}: SASL: authentication failed`),
    );

    // walpurge status says the same in its kafka line.
    const statusIo = captureIo(env());
    await runCli(['status', '--config', config], statusIo);
    expect(statusIo.out()).toMatch(
      new RegExp(
        `kafka +unavailable: cannot connect to Kafka at ${secured.sasl}: SASL: authentication failed`,
      ),
    );
  });
});
