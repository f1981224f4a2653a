import type { Operation } from '@walpurge/protocol';
import { cdnKinds, type CdnKind, type CompiledRule } from '@walpurge/rules';

export type RowOperation = Extract<Operation, 'c' | 'u' | 'd'>;
export const rowOperations: readonly RowOperation[] = ['c', 'u', 'd'];

export type KindCounts = Record<CdnKind, number>;

export const noItems = (): KindCounts => ({ urls: 0, tags: 0, prefixes: 0 });

/**
 * CDN items one row change renders, per table and operation: one per template of every rule of the
 * table that handles the operation. An upper bound for `when.changed` rules (an update touching
 * none of the columns purges nothing), a lower bound for updates that change a templated value
 * (the old value's entry is purged too). Truncates are rare and not estimated.
 */
export function cdnItemsPerEvent(
  rules: readonly CompiledRule[],
): Map<string, Record<RowOperation, KindCounts>> {
  const tables = new Map<string, Record<RowOperation, KindCounts>>();
  for (const rule of rules) {
    const perOp = tables.get(rule.table) ?? { c: noItems(), u: noItems(), d: noItems() };
    tables.set(rule.table, perOp);
    for (const op of rowOperations) {
      if (!rule.operations.has(op)) continue;
      for (const template of rule.templates) {
        const kind = template.kind.startsWith('cdn.') ? (template.kind.slice(4) as CdnKind) : undefined;
        if (kind && cdnKinds.includes(kind)) perOp[op][kind] += 1;
      }
    }
  }
  return tables;
}
