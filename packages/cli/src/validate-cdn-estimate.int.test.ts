import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createIsolatedDatabase, type IsolatedDatabase } from '@walpurge/testing';
import { runCli } from './cli.js';
import { captureIo } from './testing/capture-io.js';

const ROWS = 50_000;
const dir = mkdtempSync(join(tmpdir(), 'walpurge-estimate-'));
let database: IsolatedDatabase;

async function query<T>(url: string, text: string): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(text)).rows as T[];
  } finally {
    await client.end();
  }
}

const file = join(dir, 'walpurge.yaml');
writeFileSync(
  file,
  `database:
  url: \${DATABASE_URL}
  slot: walpurge_estimate
  publication: walpurge_estimate
cdn:
  cloudflare: { zoneId: z1, apiToken: t, plan: free }
  cloudfront: { distributionId: D1 }
rules:
  - table: articles
    on: [insert, update, delete]
    cdn:
      urls: ['https://ex.com/a/{id}']
      tags: ['article-{id}']
      prefixes: ['https://ex.com/c/{id}/']
`,
);

async function validate(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const io = captureIo({ DATABASE_URL: database.url });
  const code = await runCli(['validate', '--config', file, ...args], io);
  return { code, out: io.out(), err: io.err() };
}

beforeAll(async () => {
  database = await createIsolatedDatabase(inject('services').databaseUrl, 'cli_estimate');
  await query(
    database.url,
    `CREATE TABLE articles (id int PRIMARY KEY, title text);
     INSERT INTO articles SELECT g, 't' FROM generate_series(1, ${ROWS}) g;`,
  );
  // Statistics reach pg_stat_user_tables when the writing session flushes them (at its end at the latest).
  const deadline = Date.now() + 30_000;
  for (;;) {
    const [row] = await query<{ n: string }>(
      database.url,
      `SELECT n_tup_ins AS n FROM pg_stat_user_tables WHERE relname = 'articles'`,
    );
    if (Number(row?.n ?? 0) >= ROWS) break;
    if (Date.now() > deadline) throw new Error('insert statistics never appeared');
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
});
afterAll(async () => {
  await database?.drop();
  rmSync(dir, { recursive: true, force: true });
});

describe('walpurge validate: CDN purge estimate', () => {
  it('derives items and API calls per provider from the change rates PostgreSQL recorded', async () => {
    const result = await validate('--json');
    expect(result.code).toBe(0);
    const report = JSON.parse(result.out) as {
      estimate: {
        tables: Array<{ table: string; rate: { insertsPerSecond: number; coveredSeconds: number } }>;
        providers: Array<{
          provider: string;
          itemsPerSecond: Record<string, number>;
          callsPerSecond: number;
        }>;
      };
      warnings: Array<{ path: string; message: string }>;
    };
    const [table] = report.estimate.tables;
    expect(table?.table).toBe('public.articles');
    // The rate is the inserted rows over the time the statistics cover.
    expect((table?.rate.insertsPerSecond ?? 0) * (table?.rate.coveredSeconds ?? 0)).toBeCloseTo(ROWS, -1);
    const inserts = table?.rate.insertsPerSecond ?? 0;
    const cloudflare = report.estimate.providers.find((p) => p.provider === 'cloudflare');
    expect(cloudflare?.itemsPerSecond).toEqual({ urls: inserts, tags: inserts, prefixes: inserts });
    const cloudfront = report.estimate.providers.find((p) => p.provider === 'cloudfront');
    expect(cloudfront?.itemsPerSecond).toEqual({ urls: inserts, tags: 0, prefixes: inserts });
    // Cloudflare free: 5 tag/prefix purge calls a minute; CloudFront: 1,000 free paths a month.
    expect(report.warnings.map((w) => w.path)).toEqual(
      expect.arrayContaining(['cdn.cloudflare', 'cdn.cloudfront']),
    );
    expect(report.warnings.find((w) => w.path === 'cdn.cloudflare')?.message).toMatch(
      /calls\/s of tag\/prefix purges expected .* above the free plan limit of 0\.083\/s/,
    );
    expect(report.warnings.find((w) => w.path === 'cdn.cloudfront')?.message).toMatch(
      /invalidation paths a month/,
    );
  });

  it('prints the estimate after the checks, and per event only without a database', async () => {
    const live = await validate();
    expect(live.code).toBe(0);
    expect(live.out).toMatch(/^CDN purge estimate \(coalescing window 2000 ms; change rates averaged/m);
    expect(live.out).toMatch(
      /^ {2}public\.articles: [\d.]+ inserts\/s, 0 updates\/s, 0 deletes\/s; per event: insert 1 urls, 1 tags, 1 prefixes/m,
    );
    expect(live.out).toMatch(
      /^ {2}cloudflare: .* API calls\/s; limits: URL purges .*\(free plan\), tag\/prefix purges/m,
    );
    expect(live.err).toMatch(/warning: cdn\.cloudflare: about/);
    const offline = await validate('--offline');
    expect(offline.code).toBe(0);
    expect(offline.out).toContain(
      'CDN purge estimate (coalescing window 2000 ms; no database: per event only):\n',
    );
    expect(offline.out).toContain(
      '  public.articles: per event: insert 1 urls, 1 tags, 1 prefixes; update 1 urls, 1 tags, 1 prefixes; delete 1 urls, 1 tags, 1 prefixes\n',
    );
    expect(offline.err).not.toContain('cdn.cloudflare');
  });
});
