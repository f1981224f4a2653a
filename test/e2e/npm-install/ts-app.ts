// A TypeScript application using every entry point of @walpurge/client, type-checked (never run)
// against the installed tarballs with strict settings, as a user's project would be.
import { Redis } from 'ioredis';
import pg from 'pg';
import { createCacheClient, type GetOptions } from '@walpurge/client';
import { createWriteClient, type WriteResult } from '@walpurge/client/write';
import { cacheControl } from '@walpurge/client/http';

interface Item {
  id: number;
  sku: string;
}

const redis = new Redis('redis://127.0.0.1:6379');
const cache = createCacheClient({ redis, keyPrefix: 'app:' });
const options: GetOptions = { ttl: 60, staleWhileRevalidate: 30, tags: ['item-1'] };
// The loader's type flows through `get`: an untyped (any) declaration would not catch the misuse below.
const item: Item | null = await cache.get('item:1', async (): Promise<Item | null> => null, options);
// @ts-expect-error a string is not an Item
const wrong: Item = await cache.get('item:1', async () => 'not an item', options);
// The loader's type reaches the row version function as well.
const loadItem = async (): Promise<Item> => ({ id: 1, sku: 'a' });
const versioned: Item = await cache.get('item:1', loadItem, { ttl: 60, version: (row) => row.id });
// @ts-expect-error an Item has no 'revision'
await cache.get('item:1', loadItem, { ttl: 60, version: (row) => row.revision });

const writes = createWriteClient({ cacheRedis: redis, queueRedis: redis, database: new pg.Pool() });
const result: WriteResult = await writes.writeBehind('items', { id: 1, sku: 'a' });

export const header: string = cacheControl({ maxAge: 60, staleWhileRevalidate: 30 });
console.log(item?.sku, wrong, versioned, result);
