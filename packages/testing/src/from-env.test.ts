import { afterEach, describe, expect, it } from 'vitest';
import { servicesFromEnv, servicesToEnv } from './from-env.js';
import { startTestEnvironment } from './environment.js';

describe('servicesFromEnv', () => {
  it('reads each service independently and splits the broker list', () => {
    expect(
      servicesFromEnv({ WALPURGE_TEST_KAFKA_BROKERS: ' a:9092, b:9092 ,', WALPURGE_TEST_REDIS_URL: '' }),
    ).toEqual({ kafkaBrokers: ['a:9092', 'b:9092'] });
  });

  it('round-trips through servicesToEnv', () => {
    const urls = { databaseUrl: 'postgres://x/y', redisUrl: 'redis://r:1', kafkaBrokers: ['k:1', 'k:2'] };
    expect(servicesFromEnv(servicesToEnv(urls))).toEqual(urls);
  });
});

describe('startTestEnvironment with every service given by env', () => {
  const saved = { ...process.env };
  afterEach(() => {
    process.env = { ...saved };
  });

  it('starts nothing and reports the env provider', async () => {
    Object.assign(process.env, {
      WALPURGE_TEST_DATABASE_URL: 'postgres://user:secret@db.example:5432/app',
      WALPURGE_TEST_REDIS_URL: 'redis://cache.example:6379',
      WALPURGE_TEST_KAFKA_BROKERS: 'k1.example:9092,k2.example:9092',
    });
    const lines: string[] = [];
    const env = await startTestEnvironment({ log: (line) => lines.push(line) });

    expect(env.providers).toEqual({ postgres: 'env', redis: 'env', kafka: 'env' });
    expect(env.urls.kafkaBrokers).toEqual(['k1.example:9092', 'k2.example:9092']);
    expect(lines.join('\n')).not.toContain('secret');
    expect(lines.at(-1)).toMatch(/environment ready in \d+ ms/);
    await env.stop();
  });
});
