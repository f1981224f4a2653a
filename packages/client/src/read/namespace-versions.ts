import {
  NAMESPACE_INIT_SCRIPT,
  NAMESPACE_KEY_SEGMENT,
  namespaceKey,
  newNamespaceEpoch,
} from '@walpurge/rules';
import type { CacheRedis } from './cache-redis.js';
import type { L1Cache } from './l1-cache.js';
import type { ClientMetrics } from './metrics.js';
import { LuaScript } from './lua-script.js';
import { withTimeout } from './timeout.js';

const initVersion = new LuaScript(NAMESPACE_INIT_SCRIPT);

/** The namespaces of one get(): de-duplicated and sorted, so the same set always composes the same key. */
export function canonicalNamespaces(namespaces: readonly string[]): string[] {
  return [...new Set(namespaces)].sort();
}

/**
 * The physical key of an entry under versioned namespaces: `<key>@<ns1>=<v1>,<ns2>=<v2>` with the
 * namespaces in canonical order. A bump changes a version, so every key composed from the old one
 * becomes unreachable at once; those entries expire by their TTL, nothing is scanned. The key keeps
 * its own hash tag (the suffix comes after it), so the entry and its lease stay one key.
 */
export function composeKey(key: string, namespaces: readonly string[], versions: readonly string[]): string {
  return `${key}@${namespaces.map((namespace, i) => `${namespace}=${versions[i] ?? ''}`).join(',')}`;
}

/**
 * Reads namespace versions (layout: @walpurge/rules namespace.ts): from L1 when it holds them,
 * else from Redis in one round trip (MGET on a standalone server; on a cluster, where version keys
 * live in any slot, one GET per key, all in flight at once).
 *
 * In L1 a version is an entry under its logical key `ns:<namespace>`, so the client-side tracking
 * L1 already has evicts it the moment the invalidator bumps it (BCAST on the key prefix covers the
 * version keys), and the L1 ticket keeps a version read just before a bump out of L1.
 */
export class NamespaceVersions {
  constructor(
    private readonly redis: CacheRedis,
    private readonly prefix: string,
    private readonly timeoutMs: number,
    private readonly l1: L1Cache | undefined,
    private readonly metrics: ClientMetrics,
  ) {}

  /** Versions of `namespaces`, in their order; a namespace without a version key gets a random epoch. */
  async read(namespaces: readonly string[]): Promise<string[]> {
    const versions: Array<string | undefined> = namespaces.map((namespace) => {
      const cached = this.l1?.get(NAMESPACE_KEY_SEGMENT + namespace)?.value;
      return typeof cached === 'string' ? cached : undefined;
    });
    const missing = namespaces.filter((_, i) => versions[i] === undefined);
    this.metrics.namespaceVersionReads.inc({ source: 'l1' }, namespaces.length - missing.length);
    if (missing.length === 0) return versions as string[];
    this.metrics.namespaceVersionReads.inc({ source: 'redis' }, missing.length);
    const tickets = this.l1
      ? missing.map((namespace) => this.l1?.begin(NAMESPACE_KEY_SEGMENT + namespace))
      : [];
    try {
      const keys = missing.map((namespace) => namespaceKey(this.prefix, namespace));
      const fetched = await withTimeout(this.fetch(keys), this.timeoutMs, 'namespace versions');
      let next = 0;
      return namespaces.map((_, i) => {
        const known = versions[i];
        if (known !== undefined) return known;
        const version = fetched[next] as string;
        const ticket = tickets[next];
        next += 1;
        if (ticket && this.l1) {
          this.l1.complete(ticket, {
            value: version,
            // Never soft-expires: tracking evicts it on a bump; maxStalenessMs bounds a lost message.
            softExpiresAt: Number.POSITIVE_INFINITY,
            deltaMs: 0,
            sizeBytes: version.length,
          });
        }
        return version;
      });
    } finally {
      // Closes tickets left open by a failed read (complete is a no-op for closed ones' values).
      for (const ticket of tickets) if (ticket) this.l1?.complete(ticket, undefined);
    }
  }

  /** One MGET (standalone) or one GET per key in flight (cluster); missing keys then get an epoch. */
  private async fetch(keys: readonly string[]): Promise<string[]> {
    const found = this.redis.isCluster
      ? await Promise.all(keys.map((key) => this.redis.get(key)))
      : await this.redis.mget(...keys);
    return Promise.all(
      keys.map(async (key, i) => {
        const version = found[i];
        if (typeof version === 'string') return version;
        const reply = await initVersion.run(this.redis, [key], [newNamespaceEpoch()]);
        return Buffer.isBuffer(reply) ? reply.toString() : String(reply);
      }),
    );
  }
}
