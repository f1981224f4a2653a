import type { Cluster, Redis } from 'ioredis';
import { clusterMasters } from '@walpurge/invalidator';

/**
 * SCAN … MATCH over every master (cluster) or the one server, a page of keys at a time so memory
 * stays bounded however many keys match. SCAN may return a key twice; callers' purges are idempotent.
 */
export async function* scanKeys(
  client: Redis | Cluster,
  match: string,
  count: number,
  signal: AbortSignal,
): AsyncGenerator<string[]> {
  const nodes = client.isCluster ? await clusterMasters(client as Cluster, signal, 5_000) : [client as Redis];
  for (const node of nodes) {
    let cursor = '0';
    do {
      signal.throwIfAborted();
      const [next, keys] = await node.scan(cursor, 'MATCH', match, 'COUNT', count);
      cursor = next;
      if (keys.length > 0) yield keys;
    } while (cursor !== '0');
  }
}
