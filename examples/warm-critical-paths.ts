/**
 * Pre-warm critical paths, in walpurge terms: at start-up, load what the first users after a deploy
 * (or a purge) will ask for, through the same keys, loaders and options the request handlers use,
 * with a progress bar on stderr. Then keep the hottest key warm across purges.
 *
 *   DATABASE_URL=... REDIS_URL=... npx tsx examples/warm-critical-paths.ts
 *
 * Uses the demo shop (examples/demo/schema.sql) and the keys of examples/walpurge.yaml, so the
 * invalidator purges exactly what is warmed here.
 */
import pg from 'pg';
import {
  createCacheClient,
  describeWarmFailure,
  progressBarReporter,
  type GetOptions,
} from '@walpurge/client';

const pool = new pg.Pool({ connectionString: process.env['DATABASE_URL'] });
const cache = createCacheClient({
  redis: process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379',
  keyPrefix: '', // redis.keyPrefix of examples/walpurge.yaml
  l1: true, // refresh-on-invalidate learns of purges through L1's invalidation tracking
});

// One place for each key's loader and options, shared by the handlers and the warm-up.
const productOptions: GetOptions = { ttl: 300, staleWhileRevalidate: 60, tags: ['products'] };
const loadProduct = (id: number) => async () =>
  (await pool.query('SELECT id, sku, name, price_cents FROM products WHERE id = $1', [id])).rows[0] ?? null;
const loadCategory = (slug: string) => async () =>
  (await pool.query('SELECT id, slug, name FROM categories WHERE slug = $1', [slug])).rows[0] ?? null;

export function getProduct(id: number): Promise<unknown> {
  // The product page of the front page's first product is the hottest key: refreshed after each purge.
  const options: GetOptions = id === 1 ? { ...productOptions, refresh: 'on-invalidate' } : productOptions;
  return cache.get(`demo:product:${id}`, loadProduct(id), options);
}

async function main(): Promise<void> {
  await cache.ready();
  // The critical paths: the best-selling products and every category page.
  const { rows: products } = await pool.query<{ id: number }>(
    'SELECT id FROM products ORDER BY id LIMIT 100',
  );
  const { rows: categories } = await pool.query<{ slug: string }>('SELECT slug FROM categories');
  const report = await cache.warm(
    [
      ...products.map(({ id }) => ({
        key: `demo:product:${id}`,
        loader: loadProduct(id),
        ...productOptions,
      })),
      ...categories.map(({ slug }) => ({
        key: `demo:category:${slug}`,
        loader: loadCategory(slug),
        ttl: 3600,
      })),
    ],
    { concurrency: 8, onProgress: progressBarReporter(process.stderr) },
  );
  // Failures are collected, not thrown: start serving anyway (a cold key is only a miss).
  for (const failure of report.failures) console.error(`warm-up: ${describeWarmFailure(failure)}`);
  console.log(
    `warmed ${report.loaded}, already cached or being loaded ${report.skipped}, failed ${report.failed}`,
  );

  console.log('hot product:', await getProduct(1));
  await cache.close();
  await pool.end();
}

await main();
