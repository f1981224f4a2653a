import { describe, expect, it } from 'vitest';
import { columnsReadByTable } from './rule-columns.js';
import { WalpurgeConfig } from './schema/index.js';

describe('columnsReadByTable', () => {
  it('lists the columns of every template, fallback and when.changed, and the flusher version column, by qualified table', () => {
    const config = WalpurgeConfig.parse({
      database: { url: 'postgres://localhost/app' },
      rules: [
        {
          table: 'users',
          when: { changed: ['email'] },
          redis: { keys: ['user:{id}'], patterns: ['list:{org_id}:*'], tags: ['t:{old.team}'] },
          cdn: { urls: ['https://x/{new.slug}'] },
          fallback: { redis: { namespaces: ['ns:{org_id}:{region}'] } },
        },
        { table: 'app.orders', redis: { keys: ['order:{id}'] } },
      ],
      flusher: { queueRedisUrl: 'redis://localhost', tables: ['app.orders'] },
    });
    expect(Object.fromEntries(columnsReadByTable(config))).toEqual({
      'public.users': ['email', 'id', 'org_id', 'region', 'slug', 'team'],
      'app.orders': ['_walpurge_version', 'id'],
    });
  });
});
