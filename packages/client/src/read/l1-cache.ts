import { LRUCache } from 'lru-cache';

export interface L1Options {
  /** Most entries kept in process memory (LRU). Default 10,000. */
  maxEntries?: number;
  /** Optional cap on the summed size of the stored payloads, bytes. */
  maxBytes?: number;
  /**
   * Upper bound on how long an entry is served from process memory without asking Redis again, ms.
   * Invalidation messages normally evict entries within milliseconds; this bound covers messages that
   * were lost (pub/sub is at-most-once). Default 5,000.
   */
  maxStalenessMs?: number;
}

export interface L1Entry {
  value: unknown;
  /** Local clock, ms. */
  storedAt: number;
  /** Local clock, ms: Redis' remaining soft TTL converted when the entry was read. */
  softExpiresAt: number;
  deltaMs: number;
  sizeBytes: number;
}

/** A read from Redis in flight; set `invalidated` when the key changes before the reply is used. */
export interface ReadTicket {
  readonly key: string;
  invalidated: boolean;
}

/**
 * In-process level in front of Redis. Only trusted while Redis invalidation tracking is live
 * (`active`): when the tracking connection drops, messages may be lost, so everything is flushed
 * and the level is bypassed until tracking is back.
 *
 * The ticket dance closes the classic client-side-caching race: read v1 from Redis, key is purged,
 * the invalidation arrives, THEN the reply is stored in L1 — v1 would live on until maxStaleness.
 * Every Redis read takes a ticket first; an invalidation (or flush) marks the key's open tickets,
 * and a marked ticket's value is not stored.
 */
export class L1Cache {
  private readonly lru: LRUCache<string, L1Entry>;
  private readonly tickets = new Map<string, Set<ReadTicket>>();
  private active = false;
  readonly maxStalenessMs: number;

  constructor(
    options: L1Options,
    private readonly now: () => number,
  ) {
    this.maxStalenessMs = options.maxStalenessMs ?? 5_000;
    this.lru = new LRUCache<string, L1Entry>({
      max: options.maxEntries ?? 10_000,
      ...(options.maxBytes
        ? { maxSize: options.maxBytes, sizeCalculation: (entry: L1Entry) => Math.max(1, entry.sizeBytes) }
        : {}),
    });
  }

  get isActive(): boolean {
    return this.active;
  }

  get size(): number {
    return this.lru.size;
  }

  /** A usable entry: tracking live, not older than the staleness bound, not soft-expired. */
  get(key: string): L1Entry | undefined {
    if (!this.active) return undefined;
    const entry = this.lru.get(key);
    if (!entry) return undefined;
    const now = this.now();
    if (now - entry.storedAt > this.maxStalenessMs || now >= entry.softExpiresAt) {
      this.lru.delete(key);
      return undefined;
    }
    return entry;
  }

  begin(key: string): ReadTicket {
    const ticket: ReadTicket = { key, invalidated: !this.active };
    let open = this.tickets.get(key);
    if (!open) {
      open = new Set();
      this.tickets.set(key, open);
    }
    open.add(ticket);
    return ticket;
  }

  /** Stores the value read under `ticket` unless the key changed meanwhile; always closes the ticket. */
  complete(ticket: ReadTicket, entry: Omit<L1Entry, 'storedAt'> | undefined): void {
    const open = this.tickets.get(ticket.key);
    open?.delete(ticket);
    if (open?.size === 0) this.tickets.delete(ticket.key);
    if (entry && this.active && !ticket.invalidated)
      this.lru.set(ticket.key, { ...entry, storedAt: this.now() });
  }

  /** Returns whether the key was held. */
  invalidate(key: string): boolean {
    const held = this.lru.delete(key);
    const open = this.tickets.get(key);
    if (open) for (const ticket of open) ticket.invalidated = true;
    return held;
  }

  /** Drops everything and poisons reads in flight (FLUSHALL, lost tracking connection). */
  flush(): void {
    this.lru.clear();
    for (const open of this.tickets.values()) for (const ticket of open) ticket.invalidated = true;
  }

  activate(): void {
    this.active = true;
  }

  deactivate(): void {
    this.active = false;
    this.flush();
  }
}
