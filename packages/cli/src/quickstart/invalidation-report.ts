import type { Redis } from 'ioredis';
import type { ChangeEvent } from '@walpurge/protocol';
import type { CompiledRules, PurgePlan } from '@walpurge/rules';

const OPS = { c: 'INSERT', u: 'UPDATE', d: 'DELETE', t: 'TRUNCATE' } as const;

export interface Totals {
  events: number;
  purgedEvents: number;
  entries: number;
  latenciesMs: number[];
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? 0;
}

function rowId(event: ChangeEvent): string {
  const row = event.key ?? event.after ?? event.before;
  if (!row) return '';
  return Object.entries(row)
    .filter(([column]) => column === 'id' || (event.key !== null && column in event.key))
    .map(([column, value]) => `${column}=${String(value)}`)
    .join(',');
}

function countLabel(count: number, singular: string, plural = `${singular}s`): string {
  return `${count} ${count === 1 ? singular : plural}`;
}

/**
 * Prints each invalidation as it completes: which row, what was purged, the commit→purge latency
 * (PostgreSQL's commit timestamp to the moment the purges were acknowledged), and whether the cached
 * keys are really gone from Redis. Keeps running totals.
 */
export class InvalidationReport {
  readonly totals: Totals = { events: 0, purgedEvents: 0, entries: 0, latenciesMs: [] };

  constructor(
    private readonly print: (line: string) => void,
    private readonly rules: CompiledRules,
    private readonly redis: Redis,
    private readonly keyPrefix: string,
    /** Without a cdn section CDN entries are computed but not sent, so they are not counted. */
    private readonly cdnConfigured: boolean,
    private readonly startedAt = Date.now(),
  ) {}

  async purged(events: readonly ChangeEvent[], purgedAt: number): Promise<void> {
    for (const event of events) {
      this.totals.events += 1;
      const plan = this.rules.planPurges(event);
      const latency = Math.max(0, purgedAt - Date.parse(event.source.commitTs));
      const when = `+${((purgedAt - this.startedAt) / 1000).toFixed(1).padStart(5)}s`;
      const what = `${OPS[event.op]} ${event.source.schema}.${event.source.table} ${rowId(event)}`;
      if (plan.skipped) {
        this.print(`${when}  ${what.padEnd(34)}  no purge: ${plan.skipped}`);
        continue;
      }
      const entries = this.summarize(plan);
      this.totals.purgedEvents += 1;
      this.totals.entries += entries.count;
      this.totals.latenciesMs.push(latency);
      const gone = await this.checkGone(plan.redis.keys.slice(0, 3));
      this.print(
        `${when}  ${what.padEnd(34)}  commit→purge ${String(latency).padStart(4)} ms  ${entries.text}${gone}`,
      );
    }
  }

  private summarize(plan: PurgePlan): { count: number; text: string } {
    const parts: string[] = [];
    let count = 0;
    const add = (n: number, label: string, plural?: string): void => {
      if (n === 0) return;
      count += n;
      parts.push(countLabel(n, label, plural));
    };
    add(plan.redis.keys.length, 'key');
    add(plan.redis.patterns.length, 'pattern');
    add(plan.redis.tags.length, 'tag');
    add(plan.redis.namespaces.length, 'namespace');
    if (this.cdnConfigured)
      add(plan.cdn.urls.length + plan.cdn.tags.length + plan.cdn.prefixes.length, 'CDN entry', 'CDN entries');
    return { count, text: parts.join(', ') };
  }

  private async checkGone(keys: string[]): Promise<string> {
    if (keys.length === 0) return '';
    const counts = await Promise.all(keys.map((key) => this.redis.exists(`${this.keyPrefix}${key}`)));
    return `  [${keys.map((key, i) => `${key} ${counts[i] === 0 ? 'gone' : 'STILL CACHED'}`).join(', ')}]`;
  }

  summary(): string {
    const sorted = [...this.totals.latenciesMs].sort((a, b) => a - b);
    const latency =
      sorted.length === 0
        ? 'no purges yet'
        : `commit→purge p50 ${percentile(sorted, 50)} ms, p95 ${percentile(sorted, 95)} ms, max ${sorted.at(-1) ?? 0} ms`;
    return `totals: ${countLabel(this.totals.events, 'change')}, ${this.totals.purgedEvents} invalidated, ${countLabel(this.totals.entries, 'cache entry', 'cache entries')} purged; ${latency}`;
  }
}
