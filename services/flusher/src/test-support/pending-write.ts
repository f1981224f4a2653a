import type { PendingWrite } from '@walpurge/write-behind';

/** An upsert of row `id` of `public.<table>` at `version`, as the batcher hands it to the batch writer. */
export function pendingUpsert(table: string, id: number, version: number): PendingWrite {
  return {
    rowId: `${table}#${id}`,
    table: `public.${table}`,
    primaryKey: { id },
    row: { id, value: `v${version}` },
    op: 'upsert',
    version: String(version),
    pendingSinceMs: Date.now(),
    queuedJobId: undefined,
    failedJobId: undefined,
    cacheKeys: [],
  };
}
