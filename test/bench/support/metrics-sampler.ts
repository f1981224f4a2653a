/** Peaks of a few gauges from a walpurge process's /metrics, sampled while it works. */
export interface MetricPeaks {
  /** V8 heap in use (nodejs_heap_size_used_bytes): objects alive, garbage not yet collected. */
  heapUsedBytes: number;
  /** Memory of Buffers and other objects outside the V8 heap (nodejs_external_memory_bytes). */
  externalBytes: number;
  /** The listener's own measure of its byte bound (walpurge_listener_pending_bytes); NaN elsewhere. */
  pendingBytes: number;
  /** Its events not yet acknowledged (walpurge_listener_pending_events), bounded by a count too. */
  pendingEvents: number;
  /** Successful scrapes: few of them and the peaks say little. */
  samples: number;
}

const GAUGES: Record<Exclude<keyof MetricPeaks, 'samples'>, string> = {
  heapUsedBytes: 'nodejs_heap_size_used_bytes',
  externalBytes: 'nodejs_external_memory_bytes',
  pendingBytes: 'walpurge_listener_pending_bytes',
  pendingEvents: 'walpurge_listener_pending_events',
};

/**
 * Scrapes `http://127.0.0.1:<port>/metrics` every `intervalMs` until stopped. RSS alone does not say
 * why memory is held; the heap and the pending bytes tell a leak from a bound that is being used.
 * The sampled maxima can miss a peak between two scrapes (the listener refreshes its pending gauge
 * once a second, and at each pause).
 */
export function sampleMetrics(port: number, intervalMs = 500): { stop(): Promise<MetricPeaks> } {
  const peaks: MetricPeaks = {
    heapUsedBytes: NaN,
    externalBytes: NaN,
    pendingBytes: NaN,
    pendingEvents: NaN,
    samples: 0,
  };
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      try {
        const response = await fetch(`http://127.0.0.1:${port}/metrics`, {
          signal: AbortSignal.timeout(2000),
        });
        if (response.ok) record(peaks, await response.text());
      } catch {
        // Not listening yet, or busy: the next scrape may answer.
      }
      await new Promise((resolve) => setTimeout(resolve, intervalMs));
    }
  })();
  return {
    async stop() {
      stopped = true;
      await loop;
      return peaks;
    },
  };
}

function record(peaks: MetricPeaks, text: string): void {
  peaks.samples += 1;
  for (const [field, name] of Object.entries(GAUGES) as Array<[keyof typeof GAUGES, string]>) {
    // One series per gauge: "name value", or "name{slot=\"…\"} value" for the listener's.
    const match = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text);
    if (!match) continue;
    const value = Number(match[1]);
    if (Number.isFinite(value) && !(value <= peaks[field])) peaks[field] = value;
  }
}
