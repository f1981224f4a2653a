import { describe, expect, it } from 'vitest';
import { requestedPostgresMajor, testPostgresVersion } from './postgres-version-choice.js';

describe('WALPURGE_TEST_PG_VERSION', () => {
  it('picks a Maven Central build for 13, 14, 16, 17, 18 and the system server for 15 or nothing', () => {
    for (const major of [13, 14, 16, 17, 18])
      expect(testPostgresVersion({ WALPURGE_TEST_PG_VERSION: ` ${major} ` })).toBe(major);
    expect(testPostgresVersion({ WALPURGE_TEST_PG_VERSION: '15' })).toBeUndefined();
    expect(requestedPostgresMajor({ WALPURGE_TEST_PG_VERSION: '15' })).toBe(15);
    expect(testPostgresVersion({ WALPURGE_TEST_PG_VERSION: '' })).toBeUndefined();
    expect(requestedPostgresMajor({})).toBeUndefined();
  });

  it('refuses anything else, so a typo cannot silently test the default version', () => {
    expect(() => testPostgresVersion({ WALPURGE_TEST_PG_VERSION: '12' })).toThrow(
      'WALPURGE_TEST_PG_VERSION="12": must be one of 13, 14, 15, 16, 17, 18',
    );
    expect(() => testPostgresVersion({ WALPURGE_TEST_PG_VERSION: '17.6' })).toThrow(/must be one of/);
  });
});
