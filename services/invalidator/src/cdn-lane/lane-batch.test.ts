import { describe, expect, it } from 'vitest';
import { Rule } from '@walpurge/config';
import { createLogger, createMetricsRegistry, ErrorCode, WalpurgeError } from '@walpurge/core';
import type { ChangeEvent } from '@walpurge/protocol';
import { compileRules, type PurgeTargets } from '@walpurge/rules';
import type { DeadLetter } from '../dead-letter/dead-letter-sink.js';
import { createInvalidatorMetrics } from '../metrics.js';
import type { PurgeContext, Purger } from '../targets/purger.js';
import type { CdnQueueEntry } from './cdn-queue.js';
import { LaneBatch } from './lane-batch.js';
import { createCdnLaneMetrics } from './lane-metrics.js';

// The lane's decisions (retry, give up, bisect) on a purger scripted to fail; the transports and
// real CDNs are covered by cdn-lane.int.test.ts.
const entry = (id: number | string): CdnQueueEntry => ({
  id: String(id),
  enqueuedAt: 0,
  event: {
    v: 1,
    op: 'u',
    source: {
      db: 'd',
      schema: 'public',
      table: 'pages',
      lsn: '0/1',
      xid: 1,
      commitTs: '2026-01-01T00:00:00Z',
      origin: null,
    },
    key: { id },
    before: null,
    after: { id },
    unchanged: [],
  } satisfies ChangeEvent,
});

class ScriptedPurger implements Purger {
  readonly name = 'scripted';
  readonly stage = 'cdn' as const;
  calls: string[][] = [];
  constructor(private readonly fail: (urls: string[], call: number) => Error | undefined) {}
  count(targets: PurgeTargets): number {
    return targets.cdn.urls.length;
  }
  async purge(targets: PurgeTargets, _context: PurgeContext): Promise<void> {
    this.calls.push(targets.cdn.urls);
    const error = this.fail(targets.cdn.urls, this.calls.length);
    if (error) throw error;
  }
  async close(): Promise<void> {}
}

function setup(purger: ScriptedPurger) {
  const registry = createMetricsRegistry({ defaultMetrics: false });
  const letters: DeadLetter[] = [];
  const batch = new LaneBatch({
    purger,
    rules: compileRules([
      Rule.parse({ table: 'pages', name: 'pages', cdn: { urls: ['https://x.test/p/{id}'] } }),
    ]),
    deadLetters: { send: async (letter) => void letters.push(letter) },
    metrics: createCdnLaneMetrics(registry),
    invalidatorMetrics: createInvalidatorMetrics(registry),
    logger: createLogger({ level: 'silent' }),
    backoff: { initialMs: 1, maxMs: 2, jitter: 0 },
    maxUnclassifiedAttempts: 3,
  });
  return { batch, letters, registry };
}

const refused = () => new WalpurgeError(ErrorCode.PurgeFailed, 'answered 400', { retriable: false });

describe('LaneBatch', () => {
  it('coalesces the entries into one call', async () => {
    const purger = new ScriptedPurger(() => undefined);
    const { batch } = setup(purger);
    await batch.run([entry(1), entry(2), entry(1)], new AbortController().signal);
    expect(purger.calls).toEqual([['https://x.test/p/1', 'https://x.test/p/2']]);
  });

  it('retries a retriable failure until it succeeds, dead-letters nothing', async () => {
    const purger = new ScriptedPurger((_, call) =>
      call <= 4 ? new WalpurgeError(ErrorCode.PurgeFailed, '429', { retriable: true }) : undefined,
    );
    const { batch, letters } = setup(purger);
    await batch.run([entry(1)], new AbortController().signal);
    expect(purger.calls).toHaveLength(5);
    expect(letters).toEqual([]);
  });

  it('bisects a refused batch down to the poison entries and dead-letters only those', async () => {
    const purger = new ScriptedPurger((urls) =>
      urls.some((url) => url.endsWith('/bad')) ? refused() : undefined,
    );
    const { batch, letters, registry } = setup(purger);
    await batch.run([1, 2, 'bad', 4, 5, 6].map(entry), new AbortController().signal);
    expect(letters.map((letter) => letter.event.key)).toEqual([{ id: 'bad' }]);
    expect(letters[0]).toMatchObject({ cause: 'cdn-rejected', target: 'scripted', rules: ['pages'] });
    const purged = purger.calls.filter((urls) => !urls.some((url) => url.endsWith('/bad'))).flat();
    expect(purged.sort()).toEqual([1, 2, 4, 5, 6].map((id) => `https://x.test/p/${id}`).sort());
    const entries = (await registry.getSingleMetric('walpurge_cdn_lane_entries_total')?.get())?.values ?? [];
    expect(entries.find((v) => v.labels['outcome'] === 'purged')?.value).toBe(5);
    expect(entries.find((v) => v.labels['outcome'] === 'dead_lettered')?.value).toBe(1);
  });

  it('an unclassified error is retried maxUnclassifiedAttempts times, then treated as permanent', async () => {
    const purger = new ScriptedPurger(() => new Error('something odd'));
    const { batch, letters } = setup(purger);
    await batch.run([entry(1)], new AbortController().signal);
    expect(purger.calls).toHaveLength(3);
    expect(letters).toHaveLength(1);
  });

  it('rejects on abort without dead-lettering (the entries stay queued)', async () => {
    const purger = new ScriptedPurger(
      () => new WalpurgeError(ErrorCode.PurgeFailed, 'down', { retriable: true }),
    );
    const { batch, letters } = setup(purger);
    const abort = new AbortController();
    setTimeout(() => abort.abort(), 30);
    await expect(batch.run([entry(1)], abort.signal)).rejects.toThrow();
    expect(letters).toEqual([]);
  });
});
