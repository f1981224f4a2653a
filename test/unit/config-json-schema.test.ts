import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { configJsonSchema } from '@walpurge/config';

describe('packages/config/walpurge.schema.json', () => {
  it('is up to date with the zod schema (regenerate: npm run config-schema)', () => {
    const committed: unknown = JSON.parse(
      readFileSync(new URL('../../packages/config/walpurge.schema.json', import.meta.url), 'utf8'),
    );
    expect(committed).toEqual(configJsonSchema());
  });
});
