import { describe, expect, it } from 'vitest';
import { uniqueName, withDatabase } from './isolation.js';

describe('uniqueName', () => {
  it('is a lowercase identifier that is safe for SQL, Kafka topics and Redis keys', () => {
    const name = uniqueName('Orders-Suite.v2');
    expect(name).toMatch(/^wp_orders_suite_v2_[0-9a-f]{12}$/);
  });

  it('differs on every call', () => {
    const names = new Set(Array.from({ length: 1000 }, () => uniqueName('x')));
    expect(names.size).toBe(1000);
  });

  it('stays within the 63-byte PostgreSQL identifier limit however long the prefix', () => {
    expect(uniqueName('a'.repeat(200)).length).toBeLessThanOrEqual(63);
  });

  it('copes with a prefix that has nothing usable in it', () => {
    expect(uniqueName('---')).toMatch(/^wp_x_[0-9a-f]{12}$/);
  });
});

describe('withDatabase', () => {
  it('swaps only the database of a connection URL', () => {
    expect(withDatabase('postgres://u:p@db:5432/postgres?sslmode=disable', 'wp_a_1')).toBe(
      'postgres://u:p@db:5432/wp_a_1?sslmode=disable',
    );
  });
});
