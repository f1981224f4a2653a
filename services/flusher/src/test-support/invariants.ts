import { rowIdOf } from '@walpurge/write-behind';
import type { Fixture } from './fixture.js';

/** Tracks the newest version handed out per row, whatever order the writes complete in. */
export class LatestWrites {
  readonly rows = new Map<number, { version: bigint; value: string }>();

  record(id: number, version: string, value: string): void {
    const seen = this.rows.get(id);
    if (!seen || BigInt(version) > seen.version) this.rows.set(id, { version: BigInt(version), value });
  }
}

/**
 * What must hold at ANY moment, crash or not: PostgreSQL never holds a version newer than what was
 * written, and a row whose pending entry is gone holds exactly its latest write (it was settled only
 * after that version committed). Returns the violations (empty = fine).
 */
export async function checkInvariants(f: Fixture, latest: LatestWrites): Promise<string[]> {
  const problems: string[] = [];
  // Pending state first, database second: a row settled before we looked must already be in the
  // database when we read it (call with writers paused).
  const pendingIds = new Set<number>();
  for (const id of latest.rows.keys())
    if (await f.queue.exists(f.layout.pending(rowIdFor(f, id)))) pendingIds.add(id);
  const { rows } = await f.pool.query<{ id: number; value: string; v: string }>(
    'SELECT id, value, _walpurge_version::text AS v FROM items',
  );
  const inDb = new Map(rows.map((row) => [row.id, row]));
  for (const [id, want] of latest.rows) {
    const row = inDb.get(id);
    if (row && BigInt(row.v) > want.version)
      problems.push(`row ${id}: database has version ${row.v} > latest ${want.version}`);
    const pending = pendingIds.has(id);
    if (!pending && (!row || BigInt(row.v) !== want.version || row.value !== want.value)) {
      problems.push(
        `row ${id}: nothing pending but database has ${row ? `${row.value}@${row.v}` : 'no row'}, latest ${want.value}@${want.version}`,
      );
    }
  }
  return problems;
}

/** Final state: every row holds its latest write in PostgreSQL and in the cache. */
export async function checkFinal(f: Fixture, latest: LatestWrites): Promise<string[]> {
  const problems = await checkInvariants(f, latest);
  const { rows } = await f.pool.query<{ id: number; value: string; v: string }>(
    'SELECT id, value, _walpurge_version::text AS v FROM items',
  );
  const inDb = new Map(rows.map((row) => [row.id, row]));
  for (const [id, want] of latest.rows) {
    const row = inDb.get(id);
    if (!row || row.value !== want.value || BigInt(row.v) !== want.version)
      problems.push(`row ${id}: database ${row?.value}@${row?.v}, want ${want.value}@${want.version}`);
    const cached = (await f.cached(`item:${id}`)) as { value?: string } | undefined;
    if (cached?.value !== want.value) problems.push(`row ${id}: cache ${cached?.value}, want ${want.value}`);
  }
  return problems;
}

function rowIdFor(_f: Fixture, id: number): string {
  return rowIdOf('public.items', { id });
}
