-- Demo schema for `walpurge quickstart` and examples/walpurge.yaml: a tiny shop.
-- Safe to run twice. REPLICA IDENTITY FULL because the rules read old values ({old.email}, and
-- row values such as {sku} on delete), which DEFAULT (primary key only) does not send.

CREATE TABLE IF NOT EXISTS categories (
  id   serial PRIMARY KEY,
  slug text NOT NULL UNIQUE,
  name text NOT NULL
);
ALTER TABLE categories REPLICA IDENTITY FULL;

CREATE TABLE IF NOT EXISTS users (
  id    serial PRIMARY KEY,
  email text NOT NULL UNIQUE,
  name  text NOT NULL,
  bio   text
);
ALTER TABLE users REPLICA IDENTITY FULL;

CREATE TABLE IF NOT EXISTS products (
  id          serial PRIMARY KEY,
  sku         text NOT NULL UNIQUE,
  name        text NOT NULL,
  price_cents integer NOT NULL CHECK (price_cents >= 0),
  category_id integer NOT NULL REFERENCES categories (id),
  updated_at  timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE products REPLICA IDENTITY FULL;

INSERT INTO categories (id, slug, name) VALUES
  (1, 'coffee', 'Coffee'),
  (2, 'tea', 'Tea'),
  (3, 'gear', 'Brewing gear')
ON CONFLICT (id) DO NOTHING;

INSERT INTO users (id, email, name) VALUES
  (1, 'ada@example.com', 'Ada'),
  (2, 'grace@example.com', 'Grace'),
  (3, 'linus@example.com', 'Linus')
ON CONFLICT (id) DO NOTHING;

INSERT INTO products (id, sku, name, price_cents, category_id) VALUES
  (1, 'COF-ETH', 'Ethiopia Yirgacheffe', 1450, 1),
  (2, 'COF-COL', 'Colombia Huila', 1290, 1),
  (3, 'TEA-SEN', 'Sencha', 990, 2),
  (4, 'TEA-ASS', 'Assam', 850, 2),
  (5, 'GEA-V60', 'V60 dripper', 2500, 3),
  (6, 'GEA-KET', 'Gooseneck kettle', 5900, 3)
ON CONFLICT (id) DO NOTHING;

SELECT setval(pg_get_serial_sequence('categories', 'id'), (SELECT max(id) FROM categories));
SELECT setval(pg_get_serial_sequence('users', 'id'), (SELECT max(id) FROM users));
SELECT setval(pg_get_serial_sequence('products', 'id'), (SELECT max(id) FROM products));
