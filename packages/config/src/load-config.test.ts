import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError } from './config-error.js';
import { kafkaSslWarning } from './connections/kafka-tls-warning.js';
import { loadConfig, parseConfigText } from './load-config.js';

const valid = `
transport: inline
database:
  url: \${DATABASE_URL}
redis:
  url: \${REDIS_URL:-redis://127.0.0.1:6379}
http:
  port: \${PORT}
rules:
  - table: public.users
    on: [update, delete]
    redis:
      keys: ["user:{id}", "user_by_email:{old.email}"]
`;

function problemsOf(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

describe('config loading', () => {
  it('substitutes ${VAR} and ${VAR:-default}, types plain scalars, applies defaults', () => {
    const { config } = parseConfigText(valid, 'walpurge.yaml', {
      env: { DATABASE_URL: 'postgres://u:p@db/app', PORT: '9100' },
    });
    expect(config.database?.url).toBe('postgres://u:p@db/app');
    expect(config.database?.slot).toBe('walpurge');
    expect(config.redis?.url).toBe('redis://127.0.0.1:6379');
    expect(config.http.port).toBe(9100);
    expect(config.rules[0]?.on).toEqual(['update', 'delete']);
  });

  it('keeps a numeric-looking ${VAR} a string where the schema wants a string, a number where it wants one', () => {
    const text = `
transport: kafka
kafka:
  brokers:
    - \${BROKER}
  maxMessageBytes: \${MAX_BYTES}
  ssl: \${KAFKA_SSL}
  sasl:
    mechanism: plain
    username: \${KAFKA_USER}
    password: \${DB_PASS}
http:
  port: \${PORT}
rules: []
`;
    const { config } = parseConfigText(text, 'walpurge.yaml', {
      env: {
        BROKER: 'kafka:9092',
        MAX_BYTES: '2000000',
        KAFKA_SSL: 'true',
        KAFKA_USER: '42',
        DB_PASS: '12345',
        PORT: '9100',
      },
    });
    expect(config.kafka?.sasl).toEqual({ mechanism: 'plain', username: '42', password: '12345' });
    expect(config.kafka?.maxMessageBytes).toBe(2_000_000);
    expect(config.kafka?.ssl).toBe(true);
    expect(config.http.port).toBe(9100);
  });

  it('names every missing variable with its line', () => {
    const error = problemsOf(() => parseConfigText(valid, 'walpurge.yaml', { env: {} }));
    expect(error.code).toBe('WP_CONFIG_ENV_MISSING');
    expect(error.problems.map((p) => [p.line, p.message.split(' (')[0]])).toEqual([
      [4, 'environment variable DATABASE_URL is not set'],
      [8, 'environment variable PORT is not set'],
    ]);
  });

  it('reads secrets from files: ${file:/path}, and VAR_FILE for an unset ${VAR}', () => {
    const files: Record<string, string> = { '/run/secrets/db': 'postgres://app:s3cret@db/app' };
    const readSecretFile = (path: string): string => {
      const found = files[path];
      if (found === undefined) throw Object.assign(new Error('no such file'), { code: 'ENOENT' });
      return found;
    };
    const text = 'database:\n  url: ${file:/run/secrets/db}\nredis:\n  url: ${REDIS_URL}\n';
    const { config } = parseConfigText(text, 'walpurge.yaml', {
      env: { REDIS_URL_FILE: '/run/secrets/db' },
      readSecretFile,
    });
    expect(config.database?.url).toBe('postgres://app:s3cret@db/app');
    expect(config.redis?.url).toBe('postgres://app:s3cret@db/app');

    const error = problemsOf(() =>
      parseConfigText(text.replace('/run/secrets/db}', '/run/secrets/gone}'), 'walpurge.yaml', {
        env: { REDIS_URL_FILE: '/run/secrets/missing' },
        readSecretFile,
      }),
    );
    expect(error.code).toBe('WP_CONFIG_ENV_MISSING');
    expect(error.problems.map((p) => [p.line, p.message])).toEqual([
      [2, 'cannot read /run/secrets/gone: ENOENT'],
      [4, 'cannot read /run/secrets/missing (named by REDIS_URL_FILE): ENOENT'],
    ]);
  });

  it('leaves out, and reports, a section the caller never reads whose variables are unset', () => {
    const text = [
      'transport: kafka',
      'database:',
      '  url: ${DATABASE_URL}',
      'kafka:',
      "  brokers: ['${KAFKA_BROKERS}']",
      'flusher:',
      '  queueRedisUrl: ${QUEUE_REDIS_URL}',
    ].join('\n');
    const env = { DATABASE_URL: 'postgres://db/app', KAFKA_BROKERS: 'kafka:9092' };
    const listener = parseConfigText(text, 'walpurge.yaml', { env, unusedSections: new Set(['flusher']) });
    expect(listener.config.flusher).toBeUndefined();
    expect(listener.skippedSections).toEqual([{ section: 'flusher', variables: ['QUEUE_REDIS_URL'] }]);
    // Read sections still need their variables; an unread section whose variables are set stays.
    const refused = problemsOf(() =>
      parseConfigText(text, 'walpurge.yaml', { env: {}, unusedSections: new Set(['flusher']) }),
    );
    expect(refused.problems.map((p) => p.line)).toEqual([3, 5]);
    // A section left out on purpose is not reported missing (transport: kafka, for a flusher).
    const flusher = parseConfigText(text, 'walpurge.yaml', {
      env: { DATABASE_URL: 'postgres://db/app', QUEUE_REDIS_URL: 'redis://queue:6379' },
      unusedSections: new Set(['kafka', 'cdn']),
    });
    expect(flusher.config.kafka).toBeUndefined();
    expect(flusher.skippedSections).toEqual([{ section: 'kafka', variables: ['KAFKA_BROKERS'] }]);
    // A secret file not mounted in this role's pod, in a section it never reads: left out too.
    const unmounted = parseConfigText(text, 'walpurge.yaml', {
      env: { ...env, QUEUE_REDIS_URL_FILE: '/run/secrets/queue' },
      unusedSections: new Set(['flusher']),
      readSecretFile: () => {
        throw Object.assign(new Error('no such file'), { code: 'ENOENT' });
      },
    });
    expect(unmounted.skippedSections).toEqual([{ section: 'flusher', variables: ['QUEUE_REDIS_URL_FILE'] }]);
  });

  it("refuses rule keys and patterns under 'tag:' and 'ns:', where walpurge keeps tag sets and namespace versions", () => {
    const text = [
      'rules:',
      '  - table: users',
      '    redis:',
      "      keys: ['tag:user-{id}', 'user:{id}']",
      "      patterns: ['ns:*']",
    ].join('\n');
    const error = problemsOf(() => parseConfigText(text, 'walpurge.yaml', { env: {} }));
    expect(error.problems.map((p) => [p.path, p.message.split(',')[0]])).toEqual([
      ['rules[0].redis.keys[0]', `"tag:user-{id}" starts with 'tag:'`],
      ['rules[0].redis.patterns[0]', `"ns:*" starts with 'ns:'`],
    ]);
  });

  it('reports YAML syntax errors with their line', () => {
    const error = problemsOf(() =>
      parseConfigText('rules:\n  - table: [a\n  x: 1\n', 'bad.yaml', { env: {} }),
    );
    expect(error.code).toBe('WP_CONFIG_SYNTAX');
    expect(error.problems[0]?.line).toBeGreaterThanOrEqual(2);
    expect(error.message).toMatch(/^bad\.yaml: \d+ problems?\n {2}bad\.yaml:\d+:\d+: /);
  });

  it('lists every schema problem at once, located by YAML path and line', () => {
    const text = [
      'transport: kafka', // 1: needs a kafka section
      'databse:', // 2: typo → unknown key
      '  url: x',
      'rules:',
      '  - table: public.users',
      '    on: [upsert]', // 6: bad enum
      '    redis:',
      '      keys: ["user:{id"]', // 8: bad template
    ].join('\n');
    const error = problemsOf(() => parseConfigText(text, 'w.yaml', { env: {} }));
    expect(error.code).toBe('WP_CONFIG_INVALID');
    const byPath = Object.fromEntries(error.problems.map((p) => [p.path, p]));
    expect(byPath['databse']).toMatchObject({ line: 2, message: "unknown key 'databse'" });
    expect(byPath['rules[0].on[0]']).toMatchObject({ line: 6 });
    expect(byPath['rules[0].redis.keys[0]']).toMatchObject({ line: 8 });
    expect(byPath['rules[0].redis.keys[0]']?.message).toContain("unclosed '{'");
    expect(byPath['kafka']?.message).toContain("transport is 'kafka'");
    expect(error.message).toContain('w.yaml:8:');
  });

  it('refuses a rule on the dead-letter table (it would feed refusals back into the pipeline)', () => {
    const text = (deadLetterTable: string, ruleTable: string): string =>
      [
        'transport: inline',
        'database:',
        '  url: x',
        ...(deadLetterTable ? [`  deadLetterTable: ${deadLetterTable}`] : []),
        'rules:',
        `  - table: ${ruleTable}`,
        '    redis:',
        '      keys: ["k:{id}"]',
      ].join('\n');
    const byDefault = problemsOf(() =>
      parseConfigText(text('', 'walpurge_dead_letters'), 'w.yaml', { env: {} }),
    );
    expect(byDefault.problems).toEqual([
      expect.objectContaining({
        path: 'rules[0].table',
        line: 5,
        message: expect.stringContaining("public.walpurge_dead_letters is walpurge's dead-letter table"),
      }),
    ]);
    const configured = problemsOf(() =>
      parseConfigText(text('ops.refused', 'ops.refused'), 'w.yaml', { env: {} }),
    );
    expect(configured.problems.map((p) => p.path)).toEqual(['rules[0].table']);
    expect(() => parseConfigText(text('ops.refused', 'public.refused'), 'w.yaml', { env: {} })).not.toThrow();
  });

  it('refuses kafka.minInsyncReplicas above kafka.replicationFactor, at its line; leaves both unset by default', () => {
    const text = (kafka: string[]): string =>
      ['transport: kafka', 'kafka:', '  brokers: [k:9092]', ...kafka, 'rules: []'].join('\n');
    const error = problemsOf(() =>
      parseConfigText(text(['  replicationFactor: 2', '  minInsyncReplicas: 3']), 'w.yaml', { env: {} }),
    );
    expect(error.problems).toEqual([
      expect.objectContaining({
        path: 'kafka.minInsyncReplicas',
        line: 5,
        message:
          'min.insync.replicas 3 is above kafka.replicationFactor 2: Kafka would refuse every write (acks=all)',
      }),
    ]);
    const { kafka } = parseConfigText(text([]), 'w.yaml', { env: {} }).config;
    expect(kafka?.replicationFactor).toBeUndefined();
    expect(kafka?.minInsyncReplicas).toBeUndefined();
    expect(() =>
      parseConfigText(text(['  replicationFactor: 3', '  minInsyncReplicas: 3']), 'w.yaml', { env: {} }),
    ).not.toThrow();
  });

  it("refuses what producerClient 'platformatic' cannot honour (oauthbearer, the producer thread), at its line", () => {
    const text = (kafka: string[]): string =>
      ['transport: kafka', 'kafka:', '  brokers: [k:9092]', ...kafka, 'rules: []'].join('\n');
    const oauth = problemsOf(() =>
      parseConfigText(
        text([
          '  producerClient: platformatic',
          '  sasl:',
          '    mechanism: oauthbearer',
          '    tokenProvider: ./t.mjs',
        ]),
        'w.yaml',
        { env: {} },
      ),
    );
    expect(oauth.problems).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          path: 'kafka.producerClient',
          line: 4,
          message:
            "producerClient 'platformatic' does not support SASL oauthbearer (kafka.sasl.tokenProvider): use producerClient 'kafkajs', or a plain/scram mechanism",
        }),
      ]),
    );
    const thread = problemsOf(() =>
      parseConfigText(text(['  producerClient: platformatic', '  producerThread: true']), 'w.yaml', {
        env: {},
      }),
    );
    expect(thread.problems).toEqual([
      expect.objectContaining({
        path: 'kafka.producerClient',
        line: 4,
        message:
          "producerClient 'platformatic' runs on the main thread only: remove kafka.producerThread, or use producerClient 'kafkajs'",
      }),
    ]);
    // Accepted: with TLS files and a password mechanism; kafkajs keeps everything; the default is kafkajs.
    const accepted = parseConfigText(
      text([
        '  producerClient: platformatic',
        '  sasl:',
        '    mechanism: scram-sha-512',
        '    username: u',
        '    password: p',
      ]),
      'w.yaml',
      { env: {} },
    ).config;
    expect(accepted.kafka?.producerClient).toBe('platformatic');
    expect(() =>
      parseConfigText(text(['  producerClient: kafkajs', '  producerThread: true']), 'w.yaml', { env: {} }),
    ).not.toThrow();
    expect(parseConfigText(text([]), 'w.yaml', { env: {} }).config.kafka?.producerClient).toBe('kafkajs');
  });

  it("refuses inspect.consumerGroup equal to the invalidators' group or a CDN lane's group, at its line", () => {
    const text = (kafka: string[], inspect: string[]): string =>
      [
        'transport: kafka',
        'kafka:',
        '  brokers: [k:9092]',
        ...kafka,
        'inspect:',
        ...inspect,
        'rules: []',
      ].join('\n');
    const sameAsDefault = problemsOf(() =>
      parseConfigText(text([], ['  consumerGroup: walpurge-invalidator']), 'w.yaml', { env: {} }),
    );
    expect(sameAsDefault.problems).toEqual([
      expect.objectContaining({
        path: 'inspect.consumerGroup',
        line: 5,
        message: expect.stringContaining(
          "'walpurge-invalidator' is the invalidators' group (kafka.consumerGroup)",
        ),
      }),
    ]);
    const lane = problemsOf(() =>
      parseConfigText(text(['  consumerGroup: purge'], ['  consumerGroup: purge-cdn-fastly']), 'w.yaml', {
        env: {},
      }),
    );
    expect(lane.problems).toEqual([
      expect.objectContaining({
        path: 'inspect.consumerGroup',
        message: expect.stringContaining("a CDN lane's group (purge-cdn-<provider>)"),
      }),
    ]);
    expect(() =>
      parseConfigText(text(['  consumerGroup: purge'], ['  sampleRate: 0.5']), 'w.yaml', { env: {} }),
    ).not.toThrow();
    expect(() =>
      parseConfigText(text([], ['  consumerGroup: purge-observer']), 'w.yaml', { env: {} }),
    ).not.toThrow();
  });

  it('refuses kafka.ssl.rejectUnauthorized: false next to a ca, at its line; warns about it alone', () => {
    const text = (ssl: string[]): string =>
      ['transport: kafka', 'kafka:', '  brokers: [k:9093]', '  ssl:', ...ssl, 'rules: []'].join('\n');
    const error = problemsOf(() =>
      parseConfigText(text(['    ca: ca.pem', '    rejectUnauthorized: false']), 'w.yaml', { env: {} }),
    );
    expect(error.problems).toEqual([
      expect.objectContaining({
        path: 'kafka.ssl.rejectUnauthorized',
        line: 6,
        message: 'rejectUnauthorized: false checks no certificate: remove ca, or remove rejectUnauthorized',
      }),
    ]);
    const unchecked = parseConfigText(text(['    rejectUnauthorized: false']), 'w.yaml', { env: {} }).config;
    expect(kafkaSslWarning(unchecked.kafka)).toMatch(
      /^kafka\.ssl\.rejectUnauthorized: false: encrypted, but/,
    );
    const checked = parseConfigText(text(['    servername: kafka.example.com']), 'w.yaml', {
      env: {},
    }).config;
    expect(kafkaSslWarning(checked.kafka)).toBeUndefined();
  });

  it('says plainly when the file does not exist', async () => {
    const error = await loadConfig('/nonexistent/walpurge.yaml').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).message).toBe(
      '/nonexistent/walpurge.yaml: 1 problem\n  /nonexistent/walpurge.yaml: file not found',
    );
  });

  it('locates paths for problems found later, e.g. against the live schema', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wp-config-'));
    const file = join(dir, 'walpurge.yaml');
    writeFileSync(file, valid);
    const loaded = await loadConfig(file, { env: { DATABASE_URL: 'x', PORT: '1' } });
    expect(loaded.problemAt(['rules', 0, 'redis', 'keys', 1], "unknown column 'email'")).toEqual({
      path: 'rules[0].redis.keys[1]',
      line: 13,
      column: 27,
      message: "unknown column 'email'",
    });
  });
});
