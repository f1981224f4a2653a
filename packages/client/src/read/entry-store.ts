import type { Redis } from 'ioredis';
import { entryKey, tagSetKey } from './keys.js';
import { LuaScript } from './lua-script.js';
import { fillScript, getOrLeaseScript, refreshLeaseScript, releaseLeaseScript } from './lua-scripts.js';
import { withTimeout } from './timeout.js';

/** What Redis holds for a key, as seen by one atomic look-and-maybe-lease. */
export type LookupResult =
  | { kind: 'hit'; payload: Buffer; remainingMs: number; deltaMs: number }
  /** Soft-expired value inside the stale window; `leased` says whether this caller must refresh it. */
  | { kind: 'stale'; payload: Buffer; remainingMs: number; deltaMs: number; leased: boolean }
  /** Nothing stored; this caller holds the lease and is the one to load. */
  | { kind: 'leased' }
  /** Nothing stored; another caller is loading it. */
  | { kind: 'wait'; leaseRemainingMs: number };

export interface FillInput {
  key: string;
  token: string;
  payload: Buffer;
  softTtlMs: number;
  physicalTtlMs: number;
  deltaMs: number;
  tags: readonly string[];
}

const getOrLease = new LuaScript(getOrLeaseScript);
const fill = new LuaScript(fillScript);
const refreshLease = new LuaScript(refreshLeaseScript);
const releaseLease = new LuaScript(releaseLeaseScript);

/** Redis side of the read path: one round trip per operation, each bounded by `timeoutMs`. */
export class EntryStore {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly timeoutMs: number,
  ) {}

  async lookup(
    key: string,
    token: string,
    leaseTtlMs: number,
    tags: readonly string[],
  ): Promise<LookupResult> {
    const reply = await this.run(getOrLease, 'get', key, tags, [token, leaseTtlMs, key]);
    return parseLookup(reply);
  }

  async fill(input: FillInput): Promise<boolean> {
    const args = [
      input.token,
      input.payload,
      input.softTtlMs,
      input.physicalTtlMs,
      Math.round(input.deltaMs),
      input.key,
    ];
    return (await this.run(fill, 'fill', input.key, input.tags, args)) === 1;
  }

  async takeRefreshLease(
    key: string,
    token: string,
    leaseTtlMs: number,
    tags: readonly string[],
  ): Promise<boolean> {
    return (await this.run(refreshLease, 'refresh lease', key, tags, [token, leaseTtlMs, key])) === 1;
  }

  async releaseLease(key: string, token: string): Promise<void> {
    await this.run(releaseLease, 'release lease', key, [], [token]);
  }

  private run(
    script: LuaScript,
    what: string,
    key: string,
    tags: readonly string[],
    args: Array<string | Buffer | number>,
  ): Promise<unknown> {
    const keys = [entryKey(this.prefix, key), ...tags.map((tag) => tagSetKey(this.prefix, tag))];
    return withTimeout(script.run(this.redis, keys, args), this.timeoutMs, what);
  }
}

export function parseLookup(reply: unknown): LookupResult {
  if (!Array.isArray(reply)) throw new Error(`unexpected reply from the lookup script: ${typeof reply}`);
  const [code, payload, remaining, delta] = reply as unknown[];
  switch (code) {
    case 1:
    case 2:
    case 3: {
      if (!Buffer.isBuffer(payload)) throw new Error('lookup script returned a value that is not bytes');
      const remainingMs = Number(remaining);
      const deltaMs = Number(Buffer.isBuffer(delta) ? delta.toString() : delta);
      if (code === 1) return { kind: 'hit', payload, remainingMs, deltaMs };
      return { kind: 'stale', payload, remainingMs, deltaMs, leased: code === 3 };
    }
    case 4:
      return { kind: 'leased' };
    case 5:
      return { kind: 'wait', leaseRemainingMs: Number(payload) };
    default:
      throw new Error(`unexpected code from the lookup script: ${String(code)}`);
  }
}
