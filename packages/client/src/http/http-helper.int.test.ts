import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { WalpurgeConfig } from '@walpurge/config';
import { uniqueName } from '@walpurge/testing';
import { createCacheClient, type CacheClient } from '../read/cache-client.js';
import { rowTargetsFromRules } from '../rules/row-targets.js';
import { applyCacheHeaders } from './cache-headers.js';

/**
 * The pieces together on a real node http server, as an application would wire them: the row comes
 * through get() (tags from the rules file), the response carries Cache-Control, an ETag from the
 * row's version and the rules' CDN tags, and a client's revalidation gets 304 until the row changes.
 */
describe('HTTP helper on a node http server with the cache client', () => {
  const { redisUrl } = inject('services');
  const { rules } = WalpurgeConfig.parse({
    database: { url: 'postgres://localhost/app' },
    rules: [
      {
        table: 'users',
        redis: { keys: ['user:{id}'], tags: ['user-{id}'] },
        cdn: { tags: ['user-{id}', 'users'] },
      },
    ],
  });
  const targets = rowTargetsFromRules(rules);
  const db = new Map<number, { id: number; name: string; version: number }>([
    [42, { id: 42, name: 'Ada', version: 1 }],
  ]);
  let redis: Redis;
  let client: CacheClient;
  let server: Server;
  let base: string;
  let loads = 0;
  const prefix = `${uniqueName('http')}:`;

  beforeAll(async () => {
    redis = new Redis(redisUrl);
    await redis.ping(); // until connected, get() would (rightly) fail open to the loader
    client = createCacheClient({ redis, keyPrefix: prefix, earlyRefreshBeta: 0 });
    server = createServer((req, res) => {
      const id = Number(/^\/users\/(\d+)$/.exec(req.url ?? '')?.[1]);
      void (async () => {
        const user = await client.get(
          `user:${id}`,
          async () => {
            loads += 1;
            return db.get(id) ?? null;
          },
          { ttl: 60, tags: targets.redisTags('users', { id }) },
        );
        if (!user) {
          res.statusCode = 404;
          res.end();
          return;
        }
        const notModified = applyCacheHeaders(req, res, {
          cacheControl: { maxAge: 0, sMaxAge: 300, staleWhileRevalidate: 30, staleIfError: 86_400 },
          etag: { value: `v${user.version}`, weak: true },
          tags: targets.cdnTags('users', user),
        });
        if (notModified) return void res.end();
        res.setHeader('Content-Type', 'application/json');
        res.end(JSON.stringify(user));
      })().catch(() => {
        res.statusCode = 500;
        res.end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
    await client.close();
    redis.disconnect();
  });

  it("sends cache headers with the rules' CDN tags, answers 304 while the row is unchanged, 200 after it changed", async () => {
    const first = await fetch(`${base}/users/42`);
    expect(first.status).toBe(200);
    expect(await first.json()).toEqual({ id: 42, name: 'Ada', version: 1 });
    expect(first.headers.get('cache-control')).toBe(
      'public, max-age=0, s-maxage=300, stale-while-revalidate=30, stale-if-error=86400',
    );
    expect(first.headers.get('surrogate-key')).toBe('user-42 users');
    expect(first.headers.get('cache-tag')).toBe('user-42,users');
    const etag = first.headers.get('etag')!;
    expect(etag).toBe('W/"v1"');

    const revalidated = await fetch(`${base}/users/42`, { headers: { 'If-None-Match': etag } });
    expect(revalidated.status).toBe(304);
    expect(await revalidated.text()).toBe('');
    expect(revalidated.headers.get('surrogate-key')).toBe('user-42 users');
    expect(loads).toBe(1); // served from Redis

    // The row changes and the pipeline purges the rules' Redis tag (as the invalidator does).
    db.set(42, { id: 42, name: 'Ada L.', version: 2 });
    const members = await redis.smembers(`${prefix}tag:user-42`);
    expect(members).toEqual(['user:42']);
    await redis.unlink(...members.map((member) => prefix + member));

    const changed = await fetch(`${base}/users/42`, { headers: { 'If-None-Match': etag } });
    expect(changed.status).toBe(200);
    expect(changed.headers.get('etag')).toBe('W/"v2"');
    expect(await changed.json()).toMatchObject({ name: 'Ada L.' });
    expect(loads).toBe(2);
  });
});
