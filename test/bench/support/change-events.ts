import type { ChangeEvent } from '@walpurge/protocol';

let lsn = 0x1000;

/** An update of `public.<table>` row `id`, committed now, each with a commit LSN above the last. */
export function benchUpdate(table: string, id: number): ChangeEvent {
  lsn += 0x10;
  return {
    v: 1,
    op: 'u',
    source: {
      db: 'bench',
      schema: 'public',
      table,
      lsn: `0/${lsn.toString(16).toUpperCase()}`,
      xid: 1,
      commitTs: new Date().toISOString(),
      origin: null,
    },
    key: { id },
    before: null,
    after: { id },
    unchanged: [],
  };
}
