import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { commands, runCli } from './cli.js';
import { parseCommandArgs } from './command.js';
import { captureIo } from './testing/capture-io.js';

const dir = mkdtempSync(join(tmpdir(), 'walpurge-cli-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
function configFile(name: string, text: string): string {
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

describe('walpurge command frame', () => {
  it('prints the version of its own package.json with --version and -v', async () => {
    const manifest = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
      version: string;
    };
    for (const flag of ['--version', '-v']) {
      const io = captureIo();
      expect(await runCli([flag], io)).toBe(0);
      expect(io.out()).toBe(`${manifest.version}\n`);
    }
  });

  it('prints the command list and exits 2 without a command', async () => {
    const io = captureIo();
    expect(await runCli([], io)).toBe(2);
    for (const command of commands) expect(io.err()).toContain(`  ${command.name}`);
    expect(io.err()).toContain('Exit codes: 0 ok; 1 problems found or failure; 2 usage error.');
  });

  it('has --help on every command, with its options, env vars and exit codes', async () => {
    for (const command of commands) {
      const io = captureIo();
      expect(await runCli([...command.name.split(' '), '--help'], io), command.name).toBe(0);
      expect(io.out()).toContain(`Usage: walpurge ${command.name}`);
      expect(io.out()).toContain('Exit codes: 0 ok; 1 problems found or failure; 2 usage error.');
      expect(io.out()).toContain('-h, --help');
    }
    const run = captureIo();
    await runCli(['run', '--help'], run);
    expect(run.out()).toContain('env: WALPURGE_ROLE');
    expect(run.out()).toContain('env: WALPURGE_HTTP_PORT');
    expect(run.out()).toContain('env: LOG_LEVEL');
    expect(run.out()).toContain('env: WALPURGE_CONFIG');
  });

  it('reads every option that names an environment variable from it; a flag wins', () => {
    let checked = 0;
    for (const command of commands) {
      // explain's required inputs, so that parsing gets as far as the option under test.
      const required = Object.entries(command.options)
        .filter(([, option]) => option.required && !option.env)
        .flatMap(([name]) => [`--${name}`, 'x']);
      for (const [name, option] of Object.entries(command.options)) {
        if (!option.env) continue;
        const fromEnv = option.type === 'boolean' ? 'yes' : (option.choices?.at(-1) ?? '7');
        const expected = option.type === 'boolean' ? true : fromEnv;
        const parsed = parseCommandArgs(command, required, { [option.env]: fromEnv });
        expect(parsed.options[name], `${command.name} --${name} from ${option.env}`).toBe(expected);
        if (option.type === 'string') {
          const flag = option.choices?.[0] ?? '9';
          const both = parseCommandArgs(command, [...required, `--${name}`, flag], {
            [option.env]: fromEnv,
          });
          expect(both.options[name], `${command.name} --${name} over ${option.env}`).toBe(flag);
        }
        checked += 1;
      }
    }
    expect(checked).toBeGreaterThanOrEqual(15);
  });

  it('lists the subcommands of a command group', async () => {
    const io = captureIo();
    expect(await runCli(['dlq', '--help'], io)).toBe(0);
    expect(io.out()).toContain('walpurge dlq list');
    expect(io.out()).toContain('walpurge dlq redrive');
  });

  const usageCases: Array<{ name: string; argv: string[]; env?: Record<string, string>; stderr: string }> = [
    {
      name: 'unknown command',
      argv: ['frobnicate'],
      stderr: "walpurge: unknown command 'frobnicate'\nRun 'walpurge --help' for usage.\n",
    },
    {
      name: 'unknown option',
      argv: ['validate', '--bogus'],
      stderr: "walpurge validate: Unknown option '--bogus'\nRun 'walpurge validate --help' for usage.\n",
    },
    {
      name: 'option without its value',
      argv: ['validate', '--config'],
      stderr:
        "walpurge validate: Option '-c, --config <value>' argument missing\nRun 'walpurge validate --help' for usage.\n",
    },
    {
      name: 'bad --role',
      argv: ['run', '--role', 'bogus'],
      stderr:
        "walpurge run: --role must be one of all, listener, invalidator, flusher, inspector (got 'bogus')\nRun 'walpurge run --help' for usage.\n",
    },
    {
      name: 'bad WALPURGE_ROLE from the environment',
      argv: ['run'],
      env: { WALPURGE_ROLE: 'everything' },
      stderr:
        "walpurge run: --role must be one of all, listener, invalidator, flusher, inspector (got 'everything')\nRun 'walpurge run --help' for usage.\n",
    },
    {
      name: 'missing subcommand',
      argv: ['slot'],
      stderr: "walpurge slot: expected a subcommand: drop|reset\nRun 'walpurge slot --help' for usage.\n",
    },
    {
      name: 'unknown subcommand',
      argv: ['dlq', 'purge'],
      stderr:
        "walpurge dlq: unknown subcommand 'purge' (expected list|redrive)\nRun 'walpurge dlq --help' for usage.\n",
    },
    {
      name: 'unexpected positional argument',
      argv: ['validate', 'walpurge.yaml'],
      stderr:
        "walpurge validate: unexpected argument 'walpurge.yaml'\nRun 'walpurge validate --help' for usage.\n",
    },
  ];
  it.each(usageCases)('usage error: $name → exit 2', async ({ argv, env, stderr }) => {
    const io = captureIo(env);
    expect(await runCli(argv, io)).toBe(2);
    expect(io.err()).toBe(stderr);
    expect(io.out()).toBe('');
  });
});

describe('walpurge validate (static checks)', () => {
  const cases: Array<{
    name: string;
    file: () => string;
    stderr: (file: string) => string;
    env?: Record<string, string>;
  }> = [
    {
      name: 'missing file',
      file: () => join(dir, 'does-not-exist.yaml'),
      stderr: (f) =>
        `${f}: 1 problem\n  ${f}: file not found\nhint: pass --config with the path of your walpurge.yaml\n`,
    },
    {
      name: 'YAML syntax error, with its line',
      file: () =>
        configFile(
          'syntax.yaml',
          'database:\n  url: "postgres://x@127.0.0.1:1/x"\nrules:\n  - table: users\n    redis: { keys: ["a:{id}"]\n',
        ),
      stderr: (f) =>
        `${f}: 1 problem\n  ${f}:6:1: Flow map in block collection must be sufficiently indented and end with a }\nhint: fix the YAML syntax at the line shown\n`,
    },
    {
      name: 'unknown keys, each located',
      file: () =>
        configFile(
          'unknown-key.yaml',
          'database:\n  url: "postgres://x@127.0.0.1:1/x"\n  slots: x\nrules:\n  - table: users\n    redis:\n      pattern: ["x"]\n',
        ),
      stderr: (f) =>
        `${f}: 2 problems\n  ${f}:3:3: database.slots: unknown key 'slots'\n  ${f}:7:7: rules[0].redis.pattern: unknown key 'pattern'\n`,
    },
    {
      name: 'bad template',
      file: () =>
        configFile(
          'bad-template.yaml',
          'rules:\n  - table: users\n    redis:\n      keys: ["user:{id}", "user:{id"]\n      tags: ["t-{older.id}"]\n',
        ),
      stderr: (f) =>
        `${f}: 2 problems\n` +
        `  ${f}:4:27: rules[0].redis.keys[1]: unclosed '{' in template "user:{id" at character 6\n` +
        `  ${f}:5:14: rules[0].redis.tags[0]: unknown prefix 'older.' (use {col}, {old.col} or {new.col}) in template "t-{older.id}" at character 3\n`,
    },
    {
      name: 'unset environment variable',
      file: () => configFile('env.yaml', 'database:\n  url: ${DATABASE_URL}\n'),
      stderr: (f) =>
        `${f}: 1 problem\n  ${f}:2:8: environment variable DATABASE_URL is not set (write \${DATABASE_URL:-default} for a default, or set DATABASE_URL_FILE to a file holding it)\nhint: export the variables, give defaults, or fix the secret files\n`,
    },
    {
      name: 'kafka transport without a kafka section',
      file: () => configFile('kafka.yaml', 'transport: kafka\n'),
      stderr: (f) =>
        `${f}: 1 problem\n  ${f}:1:1: kafka: transport is 'kafka' but no kafka section is configured\n`,
    },
  ];
  it.each(cases)('$name → exit 1 with the located problem', async ({ file, stderr, env }) => {
    const path = file();
    const io = captureIo(env);
    expect(await runCli(['validate', '--config', path], io)).toBe(1);
    expect(io.err()).toBe(stderr(path));
  });

  it('reads the whole configuration from WALPURGE_CONFIG_YAML, and refuses it beside --config', async () => {
    const text = 'database:\n  url: ${DATABASE_URL}\n';
    const io = captureIo({ WALPURGE_CONFIG_YAML: text });
    expect(await runCli(['validate'], io)).toBe(1);
    expect(io.err()).toContain('$WALPURGE_CONFIG_YAML:2:8: environment variable DATABASE_URL is not set');

    // The container image sets WALPURGE_CONFIG: the YAML text wins over it.
    const image = captureIo({ WALPURGE_CONFIG_YAML: text, WALPURGE_CONFIG: join(dir, 'absent.yaml') });
    expect(await runCli(['validate'], image)).toBe(1);
    expect(image.err()).toContain('$WALPURGE_CONFIG_YAML:2:8: environment variable DATABASE_URL is not set');

    const both = captureIo({ WALPURGE_CONFIG_YAML: text });
    expect(await runCli(['validate', '--config', join(dir, 'other.yaml')], both)).toBe(2);
    expect(both.err()).toContain('both --config and WALPURGE_CONFIG_YAML are set');
  });

  it('reads --config from WALPURGE_CONFIG', async () => {
    const path = join(dir, 'from-env.yaml');
    const io = captureIo({ WALPURGE_CONFIG: path });
    expect(await runCli(['validate'], io)).toBe(1);
    expect(io.err()).toContain(`${path}: file not found`);
  });

  it('accepts the example config offline', async () => {
    const io = captureIo({
      DATABASE_URL: 'postgres://demo@127.0.0.1:5/demo',
      REDIS_URL: 'redis://127.0.0.1:6',
    });
    const example = new URL('../../../examples/walpurge.yaml', import.meta.url).pathname;
    expect(await runCli(['validate', '--config', example, '--offline'], io)).toBe(0);
    expect(io.out()).toBe(`${example}: OK (3 rules; live checks skipped (--offline))\n`);
  });

  it('prints warnings with their location but still passes', async () => {
    const path = configFile(
      'open-prefix.yaml',
      [
        'rules:',
        '  - table: public.pages',
        '    cdn:',
        "      prefixes: ['https://example.com/p/{slug}']",
        '',
      ].join('\n'),
    );
    const io = captureIo();
    expect(await runCli(['validate', '--config', path, '--offline'], io)).toBe(0);
    expect(io.err()).toContain(`${path}:4:`);
    expect(io.err()).toContain('warning: rules[0].cdn.prefixes[0]: the prefix ends in the row value {slug}');
    expect(io.err()).toContain("end it with '/' ('https://example.com/p/{slug}/')");
    expect(io.out()).toContain(`${path}: OK (1 rule;`);
  });

  it("refuses kafka.producerClient 'platformatic' with the producer thread, offline, at its line", async () => {
    const path = configFile(
      'platformatic-thread.yaml',
      [
        'transport: kafka',
        'kafka:',
        "  brokers: ['127.0.0.1:9']",
        '  producerClient: platformatic',
        '  producerThread: true',
        'rules: []',
        '',
      ].join('\n'),
    );
    const io = captureIo();
    expect(await runCli(['validate', '--config', path, '--offline'], io)).toBe(1);
    expect(io.err()).toContain(
      `${path}:4:19: kafka.producerClient: producerClient 'platformatic' runs on the main thread only: remove kafka.producerThread, or use producerClient 'kafkajs'`,
    );
  });

  it("refuses to start the listener with kafka.producerClient 'platformatic' and SASL oauthbearer", async () => {
    const path = configFile(
      'platformatic-oauth.yaml',
      [
        'transport: kafka',
        'kafka:',
        "  brokers: ['127.0.0.1:9']",
        '  producerClient: platformatic',
        '  sasl:',
        '    mechanism: oauthbearer',
        '    tokenProvider: ./token.mjs',
        'rules: []',
        '',
      ].join('\n'),
    );
    const io = captureIo();
    expect(await runCli(['run', '--role', 'listener', '--config', path], io)).toBe(1);
    expect(io.err()).toContain(
      `${path}:4:19: kafka.producerClient: producerClient 'platformatic' does not support SASL oauthbearer`,
    );
  });

  it('prints problems as JSON with --json', async () => {
    const path = configFile('json.yaml', 'database:\n  url: "x"\n  slots: x\n');
    const io = captureIo();
    expect(await runCli(['validate', '--config', path, '--json'], io)).toBe(1);
    expect(JSON.parse(io.out())).toEqual({
      ok: false,
      file: path,
      code: 'WP_CONFIG_INVALID',
      problems: [{ path: 'database.slots', line: 3, column: 3, message: "unknown key 'slots'" }],
    });
  });
});

describe('unreachable services: one clear line, no stack trace, exit 1', () => {
  it.each([
    {
      argv: ['status'],
      message: (p: Ports) =>
        `error WP_DATABASE_UNREACHABLE: cannot reach PostgreSQL at 127.0.0.1:${p.pg}/app: connection refused\n`,
    },
    {
      argv: ['slot', 'drop', '--yes'],
      message: (p: Ports) =>
        `error WP_DATABASE_UNREACHABLE: cannot reach PostgreSQL at 127.0.0.1:${p.pg}/app: connection refused\n`,
    },
    {
      argv: ['dlq', 'list'],
      message: (p: Ports) =>
        `error WP_KAFKA_UNAVAILABLE: cannot reach Kafka at 127.0.0.1:${p.kafka}: connection refused\nhint: check kafka.brokers and that the brokers are up\n`,
    },
    {
      argv: ['dlq', 'redrive'],
      message: (p: Ports) =>
        `error WP_KAFKA_UNAVAILABLE: cannot reach Kafka at 127.0.0.1:${p.kafka}: connection refused\nhint: check kafka.brokers and that the brokers are up\n`,
    },
    {
      argv: ['dlq', 'list', '--source', 'writes'],
      message: (p: Ports) =>
        `error WP_REDIS_UNAVAILABLE: cannot reach the queue Redis at 127.0.0.1:${p.redis}: connection refused\n`,
    },
    {
      argv: ['dlq', 'redrive', '--source', 'writes'],
      message: (p: Ports) =>
        `error WP_REDIS_UNAVAILABLE: cannot reach the queue Redis at 127.0.0.1:${p.redis}: connection refused\n`,
    },
  ])('walpurge $argv', async ({ argv, message }) => {
    const { freePort } = await import('@walpurge/testing');
    const ports: Ports = { pg: await freePort(), kafka: await freePort(), redis: await freePort() };
    const path = configFile(
      'unreachable-all.yaml',
      'transport: kafka\ndatabase:\n  url: postgres://app:s3cret@127.0.0.1:${PGPORT}/app\nkafka:\n  brokers: ["127.0.0.1:${KAFKAPORT}"]\nflusher:\n  queueRedisUrl: redis://:s3cret@127.0.0.1:${REDISPORT}\n',
    );
    const io = captureIo({
      PGPORT: String(ports.pg),
      KAFKAPORT: String(ports.kafka),
      REDISPORT: String(ports.redis),
    });
    expect(await runCli([...argv, '--config', path], io)).toBe(1);
    expect(io.err()).toBe(message(ports));
    expect(io.out()).toBe('');
  });
});

interface Ports {
  pg: number;
  kafka: number;
  redis: number;
}

describe('walpurge validate with an unreachable database', () => {
  it('prints one clear line, no stack trace, exit 1', async () => {
    const { freePort } = await import('@walpurge/testing');
    const port = await freePort();
    const path = configFile(
      'unreachable.yaml',
      'database:\n  url: postgres://app:s3cret@127.0.0.1:${PGPORT}/app\n',
    );
    const io = captureIo({ PGPORT: String(port) });
    expect(await runCli(['validate', '--config', path], io)).toBe(1);
    expect(io.err()).toBe(
      `error WP_DATABASE_UNREACHABLE: cannot reach PostgreSQL at 127.0.0.1:${port}/app: connection refused\n`,
    );
    expect(io.out()).toBe('');
  });
});
