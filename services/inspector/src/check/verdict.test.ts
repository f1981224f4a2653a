import { describe, expect, it } from 'vitest';
import { causeOf, confirm, entryVersionOf, firstLook, type EntryVersion } from './verdict.js';

const layout = { versionColumn: 'ver', writeVersionCounts: false };
const sdk = (version: string): EntryVersion => ({ kind: 'versioned', writer: 'sdk', version, filledAt: 1 });
const update = { deleted: false, version: '5' };
const deletion = { deleted: true, version: '5' };

describe('entryVersionOf', () => {
  it("reads an SDK hash's ver, and wv only where the rule's version is the flusher's column", () => {
    const hash = {
      kind: 'hash',
      version: null,
      writeVersion: '9',
      readerFilledOverWrite: false,
      filledAt: 3,
      loadStartedAt: 2,
    } as const;
    expect(entryVersionOf(hash, layout)).toEqual({
      kind: 'unversioned',
      writer: 'sdk',
      reason: 'entry-has-no-version',
    });
    expect(entryVersionOf(hash, { ...layout, writeVersionCounts: true })).toEqual({
      kind: 'versioned',
      writer: 'sdk',
      version: '9',
      filledAt: 3,
    });
  });

  it('ignores wv once a reader filled over the write-side marker (rf): wv no longer describes the value', () => {
    const filledOver = {
      kind: 'hash',
      version: null,
      writeVersion: '9',
      readerFilledOverWrite: true,
      filledAt: 3,
      loadStartedAt: 2,
    } as const;
    expect(entryVersionOf(filledOver, { ...layout, writeVersionCounts: true })).toEqual({
      kind: 'unversioned',
      writer: 'sdk',
      reason: 'entry-has-no-version',
    });
    // A reader's own version still counts.
    expect(
      entryVersionOf({ ...filledOver, version: '4' }, { ...layout, writeVersionCounts: true }),
    ).toMatchObject({
      kind: 'versioned',
      version: '4',
    });
  });

  it("reads a plain JSON value's version field, else labels why not", () => {
    expect(entryVersionOf({ kind: 'string', value: '{"ver":7}' }, layout)).toMatchObject({
      writer: 'other',
      version: '7',
    });
    expect(entryVersionOf({ kind: 'string', value: '{"id":1}' }, layout)).toMatchObject({
      reason: 'plain-value-without-version',
    });
    expect(entryVersionOf({ kind: 'string', value: 'x' }, layout)).toMatchObject({
      reason: 'plain-value-not-json',
    });
    expect(entryVersionOf({ kind: 'other', type: 'set' }, layout)).toMatchObject({
      reason: 'redis-type-set',
    });
  });
});

describe('firstLook and confirm', () => {
  it('absent and newer-or-equal are consistent, older is a candidate', () => {
    expect(firstLook({ kind: 'absent' }, update).verdict).toBe('consistent');
    expect(firstLook(sdk('5'), update).verdict).toBe('consistent');
    expect(firstLook(sdk('4'), update).verdict).toBe('candidate');
    expect(firstLook(sdk('x'), update)).toEqual({
      verdict: 'unverifiable',
      reason: 'versions-not-comparable',
    });
  });

  it('a delete: an entry newer than the deleted row is a later write, others are candidates', () => {
    expect(firstLook(sdk('6'), deletion).verdict).toBe('consistent');
    expect(firstLook(sdk('5'), deletion).verdict).toBe('candidate');
    expect(firstLook(sdk('1'), { deleted: true, version: undefined }).verdict).toBe('candidate');
  });

  it('confirms only what the database and a second look agree on', () => {
    expect(confirm(update, { gone: false, version: '6' }, sdk('4')).verdict).toBe('inconsistent');
    expect(confirm(update, { gone: false, version: '6' }, { kind: 'absent' }).verdict).toBe('consistent');
    expect(confirm(update, { gone: false, version: '3' }, sdk('4'))).toEqual({
      verdict: 'unverifiable',
      reason: 'version-not-monotonic',
    });
    expect(confirm(update, { gone: true }, sdk('4'))).toEqual({
      verdict: 'unverifiable',
      reason: 'row-deleted-since',
    });
    expect(confirm(deletion, { gone: true }, sdk('5')).verdict).toBe('inconsistent');
    expect(confirm(deletion, { gone: false, version: '7' }, sdk('5'))).toEqual({
      verdict: 'unverifiable',
      reason: 'row-reinserted',
    });
  });

  it('names the cause by writer and fill time', () => {
    expect(causeOf('other', null, 10)).toBe('other-writer');
    expect(causeOf('sdk', 9, 10)).toBe('purge-missing');
    expect(causeOf('sdk', null, 10)).toBe('purge-missing');
    expect(causeOf('sdk', 10, 10)).toBe('stale-fill');
  });
});
