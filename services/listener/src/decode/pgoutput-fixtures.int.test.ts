/**
 * The committed pgoutput fixtures (see pgoutput-fixtures.test.ts) are still what the PostgreSQL
 * under test produces: the same scenarios, captured live, decode to the same messages once the
 * values that differ with every capture (OIDs, LSNs, xids, commit times, origin name) are set
 * aside. Fails when a scenario changed without regenerating the fixtures, or when a server version
 * sends something else than the one they were captured from.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, inject, it } from 'vitest';
import { uniqueName } from '@walpurge/testing';
import { captureFixtures } from '../test-support/capture-pgoutput-fixtures.js';
import { decodePgoutput } from './pgoutput-decoder.js';

const services = inject('services');
const FIXTURES = new URL('./fixtures/', import.meta.url);
/** OIDs below this are PostgreSQL's own (FirstNormalObjectId): stable across databases. */
const FIRST_USER_OID = 16384;

function comparable(lines: readonly string[]): unknown[] {
  const tables = new Map<number, string>();
  const table = (oid: number): string => tables.get(oid) ?? `unknown relation ${oid}`;
  const type = (oid: number): number | string => (oid >= FIRST_USER_OID ? 'user type' : oid);
  return lines.map((line) => {
    const message = decodePgoutput(Buffer.from(line.split(' ')[2] as string, 'hex'));
    switch (message.tag) {
      case 'begin':
      case 'commit':
        return { tag: message.tag };
      case 'origin':
        return { tag: message.tag, originLsn: message.originLsn };
      case 'message':
        return { ...message, lsn: 'varies' };
      case 'type':
        return { ...message, typeOid: type(message.typeOid) };
      case 'relation':
        tables.set(message.relationOid, message.table);
        return {
          ...message,
          relationOid: message.table,
          columns: message.columns.map((column) => ({ ...column, typeOid: type(column.typeOid) })),
        };
      case 'truncate':
        return { ...message, relationOids: message.relationOids.map(table) };
      default:
        return { ...message, relationOid: table(message.relationOid) };
    }
  });
}

describe('pgoutput fixtures', () => {
  it('match what the PostgreSQL under test produces for the same scenarios', async () => {
    const live = await captureFixtures(services.databaseUrl, uniqueName('fixtures_origin'));
    expect(live.scenarios.size).toBeGreaterThan(5);
    for (const [name, lines] of live.scenarios) {
      const committed = readFileSync(new URL(`${name}.hex`, FIXTURES), 'utf8')
        .trim()
        .split('\n');
      expect(comparable(lines), `${name} (server ${live.serverVersion})`).toEqual(comparable(committed));
    }
    const meta = JSON.parse(readFileSync(new URL('types.json', FIXTURES), 'utf8')) as { types: object[] };
    const shape = (types: readonly object[]) =>
      types.map((row) => {
        const { oid: _oid, elementOid: _element, ...rest } = row as { oid: number; elementOid: number };
        return rest;
      });
    expect(shape(live.types as object[])).toEqual(shape(meta.types));
  });
});
