import type { ChangeEvent, Row } from '@walpurge/protocol';

/**
 * An UPDATE event of row `id` of `public.docs` at `version` (the producer tests' stock event): its
 * LSN, xid and commit time derive from the version, so equal arguments give equal events. `key`
 * and `after` default to `{ id }` and `{ id, version }`.
 */
export function docsUpdate(id: number, version: number, shape: { key?: Row; after?: Row } = {}): ChangeEvent {
  return {
    v: 1,
    op: 'u',
    source: {
      db: 'app',
      schema: 'public',
      table: 'docs',
      lsn: `0/${(1000 + version).toString(16).toUpperCase()}`,
      xid: version,
      commitTs: new Date(Date.UTC(2026, 11, 6, 12, 0, 0, version % 1000)).toISOString(),
      origin: null,
    },
    key: shape.key ?? { id },
    before: null,
    after: shape.after ?? { id, version },
    unchanged: [],
  };
}
