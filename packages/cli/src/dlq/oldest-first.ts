/** Where a record sits in time: its timestamp, then partition and offset to break ties stably. */
export interface RecordPosition {
  timestampMs: number;
  partition: number;
  offset: bigint;
}

export function compareByAge(a: RecordPosition, b: RecordPosition): number {
  if (a.timestampMs !== b.timestampMs) return a.timestampMs - b.timestampMs;
  if (a.partition !== b.partition) return a.partition - b.partition;
  return a.offset < b.offset ? -1 : a.offset > b.offset ? 1 : 0;
}

/**
 * Keeps the `limit` oldest of the items added, whatever order they come in (a consumer reads a
 * topic partition by partition, not in time order). Memory stays within 2 × limit: once that
 * many are held, they are sorted and the newer half dropped.
 */
export class OldestFirst<T> {
  private items: T[] = [];

  constructor(
    private readonly limit: number,
    private readonly positionOf: (item: T) => RecordPosition,
  ) {}

  add(item: T): void {
    if (this.limit <= 0) return;
    this.items.push(item);
    if (this.items.length >= 2 * this.limit) this.trim();
  }

  /** The kept items, oldest first. */
  result(): T[] {
    this.trim();
    return [...this.items];
  }

  private trim(): void {
    this.items.sort((a, b) => compareByAge(this.positionOf(a), this.positionOf(b)));
    if (this.items.length > this.limit) this.items.length = this.limit;
  }
}
