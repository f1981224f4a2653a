import calculateSlot from 'cluster-key-slot';

/**
 * Multi-key commands in Redis Cluster must stay inside one hash slot (CROSSSLOT otherwise). Groups
 * keys by slot — the same calculation ioredis uses to route, hash tags `{…}` included — and cuts
 * each group into batches of at most `batchSize`.
 */
export function groupBySlot(keys: readonly string[], batchSize: number): string[][] {
  const bySlot = new Map<number, string[]>();
  for (const key of keys) {
    const slot = calculateSlot(key);
    const group = bySlot.get(slot);
    if (group) group.push(key);
    else bySlot.set(slot, [key]);
  }
  const batches: string[][] = [];
  for (const group of bySlot.values()) batches.push(...chunk(group, batchSize));
  return batches;
}

export function chunk<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}
