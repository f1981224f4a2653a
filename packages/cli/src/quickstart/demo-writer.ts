import type pg from 'pg';
import type { Redis } from 'ioredis';

/**
 * Writes like an application would: before each change it fills the cache entries the rules derive
 * from the row (so the purge is visible), then commits one change. Values are deterministic per step
 * so a run is reproducible.
 */
export interface DemoWrite {
  description: string;
  /** Cache keys filled before the write; the rules should make them disappear. */
  cachedKeys: string[];
}

interface ProductRow {
  id: number;
  sku: string;
  price_cents: number;
  category_id: number;
}

const ACTIONS = ['price', 'price', 'sku', 'email', 'bio', 'category'] as const;

export class DemoWriter {
  private step = 0;
  /** Every Redis key this writer filled (entries and tag sets), so a user's Redis can be cleaned. */
  readonly filledKeys = new Set<string>();

  constructor(
    private readonly db: pg.Client,
    private readonly redis: Redis,
    private readonly keyPrefix: string,
  ) {}

  private async cache(keys: string[], members: Record<string, string[]> = {}): Promise<void> {
    const batch = this.redis.multi();
    const fill = (key: string, value: string): void => {
      batch.set(key, value);
      this.filledKeys.add(key);
    };
    for (const key of keys) fill(`${this.keyPrefix}${key}`, JSON.stringify({ cachedAt: Date.now() }));
    for (const [tag, tagged] of Object.entries(members)) {
      for (const member of tagged) fill(`${this.keyPrefix}${member}`, '{}');
      batch.sadd(`${this.keyPrefix}tag:${tag}`, ...tagged);
      this.filledKeys.add(`${this.keyPrefix}tag:${tag}`);
    }
    await batch.exec();
  }

  async next(): Promise<DemoWrite> {
    this.step += 1;
    const action = ACTIONS[this.step % ACTIONS.length] ?? 'price';
    const id = (this.step % 6) + 1;
    switch (action) {
      case 'price':
      case 'sku': {
        const { rows } = await this.db.query<ProductRow>(
          'SELECT id, sku, price_cents, category_id FROM products WHERE id = $1',
          [id],
        );
        const product = rows[0];
        if (!product) return this.next();
        const keys = [
          `demo:product:${id}`,
          `demo:product_by_sku:${product.sku}`,
          `demo:product:${id}:reviews`,
        ];
        await this.cache(keys, {
          [`category-${product.category_id}`]: [`demo:category-page:${product.category_id}`],
        });
        if (action === 'sku') {
          const sku = product.sku.endsWith('-2') ? product.sku.slice(0, -2) : `${product.sku}-2`;
          await this.db.query('UPDATE products SET sku = $2, updated_at = now() WHERE id = $1', [id, sku]);
          return { description: `UPDATE products SET sku = '${sku}' WHERE id = ${id}`, cachedKeys: keys };
        }
        const price = 500 + ((product.price_cents + 137 * this.step) % 5000);
        await this.db.query('UPDATE products SET price_cents = $2, updated_at = now() WHERE id = $1', [
          id,
          price,
        ]);
        return {
          description: `UPDATE products SET price_cents = ${price} WHERE id = ${id}`,
          cachedKeys: keys,
        };
      }
      case 'email': {
        const userId = (this.step % 3) + 1;
        const { rows } = await this.db.query<{ email: string }>('SELECT email FROM users WHERE id = $1', [
          userId,
        ]);
        const email = rows[0]?.email ?? `user${userId}@example.com`;
        const next = email.startsWith('new.') ? email.slice(4) : `new.${email}`;
        const keys = [`demo:user:${userId}`, `demo:user_by_email:${email}`];
        await this.cache(keys);
        await this.db.query('UPDATE users SET email = $2 WHERE id = $1', [userId, next]);
        return { description: `UPDATE users SET email = '${next}' WHERE id = ${userId}`, cachedKeys: keys };
      }
      case 'bio': {
        const userId = (this.step % 3) + 1;
        const keys = [`demo:user:${userId}`];
        await this.cache(keys);
        await this.db.query('UPDATE users SET bio = $2 WHERE id = $1', [userId, `bio #${this.step}`]);
        return {
          description: `UPDATE users SET bio = 'bio #${this.step}' WHERE id = ${userId}  (not in when.changed)`,
          cachedKeys: [],
        };
      }
      case 'category': {
        const categoryId = (this.step % 3) + 1;
        const { rows } = await this.db.query<{ slug: string }>('SELECT slug FROM categories WHERE id = $1', [
          categoryId,
        ]);
        const slug = rows[0]?.slug ?? 'coffee';
        const keys = [
          `demo:category:${slug}`,
          `demo:category:${slug}:page:1`,
          `demo:category:${slug}:page:2`,
        ];
        await this.cache(keys);
        await this.db.query("UPDATE categories SET name = name || '' WHERE id = $1", [categoryId]);
        return {
          description: `UPDATE categories SET name = name WHERE id = ${categoryId}`,
          cachedKeys: keys,
        };
      }
    }
  }
}
