import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../config-error.js';
import { parseConfigText } from '../load-config.js';
import { redisClusterSeed, redisTlsOptions } from './redis-connection.js';

const dir = mkdtempSync(join(tmpdir(), 'walpurge-redis-tls-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const certificate = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
const ca = join(dir, 'ca.pem');
writeFileSync(ca, certificate);

describe('Redis TLS options (url + tls)', () => {
  it('rediss:// uses TLS (public CAs unless a CA is given); redis:// does not', () => {
    expect(redisTlsOptions({ url: 'redis://cache:6379' })).toEqual({});
    expect(redisTlsOptions({ url: 'rediss://cache:6380' })).toEqual({ tls: {} });
    expect(
      redisTlsOptions({ url: 'rediss://cache:6380', tls: { ca, servername: 'cache.internal' } }),
    ).toEqual({
      tls: { ca: certificate, servername: 'cache.internal' },
    });
  });

  it('a Redis Cluster gives every node the credentials and TLS settings, servername included', () => {
    expect(
      redisClusterSeed({ url: 'rediss://app:s%40cret@10.0.0.5:7000', tls: { ca, servername: 'c' } }),
    ).toEqual({
      seed: { host: '10.0.0.5', port: 7000 },
      redisOptions: { username: 'app', password: 's@cret', tls: { ca: certificate, servername: 'c' } },
    });
  });

  it('refuses TLS settings on a redis:// URL, for the cache and the queue Redis', () => {
    let error: unknown;
    try {
      parseConfigText(
        `redis:\n  url: redis://cache:6379\n  tls:\n    ca: ${ca}\nflusher:\n  queueRedisUrl: redis://queue:6379\n  queueRedisTls:\n    ca: ${ca}\n`,
        'walpurge.yaml',
        { env: {} },
      );
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).problems.map((p) => `${p.path}: ${p.message}`)).toEqual([
      'redis.tls: TLS settings need a rediss:// URL (redis:// connects without TLS)',
      'flusher.queueRedisTls: TLS settings need a rediss:// URL (redis:// connects without TLS)',
    ]);
  });
});
