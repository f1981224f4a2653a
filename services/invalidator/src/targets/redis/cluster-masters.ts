import type { Cluster, Redis } from 'ioredis';
import { ErrorCode, WalpurgeError } from '@walpurge/core';

const HASH_SLOTS = 16_384;

/**
 * The masters a pattern SCAN must visit: one connection per master that owns a hash slot in the
 * client's slot map. `cluster.nodes('master')` alone is not that list: before the client is ready
 * it holds only the seed node (or nothing), and a master whose connection ended drops out of it
 * until the next MOVED reply refreshes the map. A SCAN over such a list "succeeds" while the keys
 * on every missing master stay cached, so this waits for the topology and fails retriably rather
 * than return an incomplete list.
 */
export async function clusterMasters(
  cluster: Cluster,
  signal: AbortSignal,
  readyTimeoutMs: number,
): Promise<Redis[]> {
  if (cluster.status !== 'ready') await untilReady(cluster, signal, readyTimeoutMs);
  let masters = slotOwners(cluster);
  if (masters === undefined) {
    // Reloading the slot map reconnects to every owner.
    await new Promise<void>((resolve, reject) =>
      cluster.refreshSlotsCache((error) => (error ? reject(error) : resolve())),
    );
    masters = slotOwners(cluster);
  }
  if (masters === undefined || masters.length === 0) {
    throw unavailable(`no connection to every master that owns a hash slot (status ${cluster.status})`);
  }
  return masters;
}

/** Undefined when an owner has no connection in the pool. Unassigned slots hold no keys: skipped. */
function slotOwners(cluster: Cluster): Redis[] | undefined {
  const byKey = new Map<string, Redis>(
    cluster.nodes('master').map((node) => [`${node.options.host}:${node.options.port}`, node] as const),
  );
  const owners = new Map<string, Redis>();
  for (let slot = 0; slot < HASH_SLOTS; slot++) {
    const key = cluster.slots[slot]?.[0];
    if (key === undefined || owners.has(key)) continue;
    const node = byKey.get(key);
    if (node === undefined) return undefined;
    owners.set(key, node);
  }
  return [...owners.values()];
}

function untilReady(cluster: Cluster, signal: AbortSignal, timeoutMs: number): Promise<void> {
  signal.throwIfAborted();
  if (cluster.status === 'end') return Promise.reject(unavailable('the client was closed'));
  return new Promise((resolve, reject) => {
    const settle = (error?: unknown): void => {
      clearTimeout(timer);
      cluster.off('ready', onReady);
      signal.removeEventListener('abort', onAbort);
      if (error === undefined) resolve();
      else reject(error);
    };
    const onReady = (): void => settle();
    const onAbort = (): void => settle(signal.reason);
    const timer = setTimeout(
      () => settle(unavailable(`not ready after ${timeoutMs} ms (status ${cluster.status})`)),
      timeoutMs,
    );
    cluster.once('ready', onReady);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

function unavailable(reason: string): WalpurgeError {
  return new WalpurgeError(
    ErrorCode.RedisUnavailable,
    `Redis Cluster: ${reason}; patterns cannot be scanned on every master`,
    { retriable: true },
  );
}
