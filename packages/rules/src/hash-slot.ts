import calculateSlot from 'cluster-key-slot';

/**
 * Redis Cluster hash slots, as servers and ioredis compute them (hash tags `{…}` included). A
 * script or multi-key command may only name keys of one slot (CROSSSLOT otherwise).
 */
export function hashSlot(key: string): number {
  return calculateSlot(key);
}

/** `keys` grouped by hash slot, in first-seen order: one multi-key call per group on a cluster. */
export function groupKeysBySlot(keys: readonly string[]): string[][] {
  const bySlot = new Map<number, string[]>();
  for (const key of keys) {
    const slot = calculateSlot(key);
    const group = bySlot.get(slot);
    if (group) group.push(key);
    else bySlot.set(slot, [key]);
  }
  return [...bySlot.values()];
}
