/**
 * A bounded timer queue: a binary min-heap on due time and one Node timer armed for the earliest.
 * Thousands of checks per second would otherwise be thousands of timers. The bound is the
 * observer's memory bound: `tryAdd` refuses (the caller counts a drop) instead of growing.
 */
export interface Due<T> {
  at: number;
  item: T;
}

export class BoundedScheduler<T> {
  private readonly heap: Array<Due<T>> = [];
  private timer: NodeJS.Timeout | undefined;
  private armedFor = Infinity;
  private stopped = false;

  constructor(
    private readonly capacity: number,
    /** Runs each item when due; must not throw (the observer catches and counts its own errors). */
    private readonly run: (item: T) => void,
    private readonly now: () => number = Date.now,
  ) {}

  get size(): number {
    return this.heap.length;
  }

  /** Whether `count` more items fit. */
  hasRoom(count: number): boolean {
    return this.heap.length + count <= this.capacity;
  }

  /** false when full (nothing added). */
  tryAdd(at: number, item: T): boolean {
    if (this.stopped || this.heap.length >= this.capacity) return false;
    this.heap.push({ at, item });
    this.siftUp(this.heap.length - 1);
    this.arm();
    return true;
  }

  /** Forgets everything scheduled; later adds are refused. */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.heap.length = 0;
  }

  private arm(): void {
    const first = this.heap[0];
    if (!first || first.at >= this.armedFor) return;
    clearTimeout(this.timer);
    this.armedFor = first.at;
    this.timer = setTimeout(() => this.fire(), Math.max(0, first.at - this.now()));
    // Never keeps the process alive on its own: stopping the observer is what ends it.
    this.timer.unref();
  }

  private fire(): void {
    this.timer = undefined;
    this.armedFor = Infinity;
    const now = this.now();
    while (this.heap.length > 0 && (this.heap[0] as Due<T>).at <= now) {
      const due = this.pop();
      this.run(due.item);
    }
    this.arm();
  }

  private pop(): Due<T> {
    const top = this.heap[0] as Due<T>;
    const last = this.heap.pop() as Due<T>;
    if (this.heap.length > 0) {
      this.heap[0] = last;
      this.siftDown(0);
    }
    return top;
  }

  private siftUp(index: number): void {
    const heap = this.heap;
    let i = index;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if ((heap[parent] as Due<T>).at <= (heap[i] as Due<T>).at) break;
      [heap[parent], heap[i]] = [heap[i] as Due<T>, heap[parent] as Due<T>];
      i = parent;
    }
  }

  private siftDown(index: number): void {
    const heap = this.heap;
    let i = index;
    for (;;) {
      const left = 2 * i + 1;
      const right = left + 1;
      let smallest = i;
      if (left < heap.length && (heap[left] as Due<T>).at < (heap[smallest] as Due<T>).at) smallest = left;
      if (right < heap.length && (heap[right] as Due<T>).at < (heap[smallest] as Due<T>).at) smallest = right;
      if (smallest === i) return;
      [heap[smallest], heap[i]] = [heap[i] as Due<T>, heap[smallest] as Due<T>];
      i = smallest;
    }
  }
}
