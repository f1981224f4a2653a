// A read-only application after the documented `npm install @walpurge/client ioredis@5`: no bullmq,
// no pg, no @types/pg. Type-checked (never run) with the shipped declarations checked too.
import { Redis } from 'ioredis';
import { createCacheClient } from '@walpurge/client';
import { cacheControl } from '@walpurge/client/http';

interface Item {
  id: number;
  sku: string;
}

const redis = new Redis('redis://127.0.0.1:6379');
const cache = createCacheClient({ redis, keyPrefix: 'app:' });
const item: Item | null = await cache.get('item:1', async (): Promise<Item | null> => null, { ttl: 60 });
export const header: string = cacheControl({ maxAge: 60 });
console.log(item?.sku);
