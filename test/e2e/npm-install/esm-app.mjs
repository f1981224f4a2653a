// An application as a user writes it after `npm install walpurge @walpurge/client`: plain ESM, run
// with node, reading through the cache (loader once, then Redis) and building a Cache-Control header.
import { Redis } from 'ioredis';
import { createCacheClient } from '@walpurge/client';
import { cacheControl } from '@walpurge/client/http';

const redis = new Redis(process.env.REDIS_URL);
await redis.ping(); // the client fails open (straight to the loader) until Redis is connected
const cache = createCacheClient({ redis, keyPrefix: process.env.KEY_PREFIX });
let loads = 0;
const load = async () => {
  loads += 1;
  return { id: 1, sku: 'from-loader' };
};
const first = await cache.get('esm-app:1', load, { ttl: 60 });
const second = await cache.get('esm-app:1', load, { ttl: 60 });
console.log(JSON.stringify({ first, second, loads, header: cacheControl({ maxAge: 60 }) }));
await cache.close();
redis.disconnect();
