import { ErrorCode, sleep, systemClock, WalpurgeError, type Clock, type Logger } from '@walpurge/core';
import type { CdnMetrics } from './cdn-metrics.js';

/**
 * An error that blames the provider account rather than the request: the credentials (401, 403)
 * or the zone/service/distribution id. Every other purge would fail the same way, so it must not
 * be dead-lettered event by event: the provider's circuit pauses instead (see ProviderCircuit).
 */
export interface ProviderRefusal {
  readonly providerRefusal: true;
  readonly message: string;
  readonly hint?: string | undefined;
}

export function isProviderRefusal(error: unknown): error is ProviderRefusal {
  return (
    typeof error === 'object' &&
    error !== null &&
    (error as { providerRefusal?: unknown }).providerRefusal === true
  );
}

/**
 * Pauses one provider while it refuses the account. The first refusal opens the circuit: the
 * provider's gauge goes to 1 and one error is logged with the hint. While open, every call waits,
 * and one call at a time probes with its own request every `probeIntervalMs`; the first success
 * closes the circuit and everyone proceeds. Nothing fails while paused, so the lane keeps the
 * events instead of dead-lettering them; an abort (shutdown) ends the wait.
 */
export class ProviderCircuit {
  private open = false;
  private lastProbeAt = 0;
  private pausedSince = 0;
  private readonly wake = new Set<() => void>();

  constructor(
    readonly provider: string,
    private readonly probeIntervalMs: number,
    private readonly metrics: CdnMetrics,
    private readonly logger: Logger | undefined,
    private readonly clock: Clock = systemClock,
  ) {
    metrics.providerPaused.set({ provider }, 0);
  }

  get paused(): boolean {
    return this.open;
  }

  async run<T>(attempt: () => Promise<T>, signal: AbortSignal): Promise<T> {
    for (;;) {
      await this.waitTurn(signal);
      try {
        const result = await attempt();
        this.close();
        return result;
      } catch (error) {
        if (!isProviderRefusal(error)) throw error;
        this.trip(error);
      }
    }
  }

  /** Returns at once while closed; while open, when the circuit closes or this caller's probe is due. */
  private async waitTurn(signal: AbortSignal): Promise<void> {
    while (this.open) {
      throwIfAborted(signal);
      const dueIn = this.lastProbeAt + this.probeIntervalMs - this.clock.now();
      if (dueIn <= 0) {
        this.lastProbeAt = this.clock.now();
        return;
      }
      // The timer is cancelled when the circuit closes first: no timer outlives the wait.
      const stop = new AbortController();
      let resolveClosed = (): void => {};
      const closed = new Promise<void>((resolve) => (resolveClosed = resolve));
      this.wake.add(resolveClosed);
      try {
        await Promise.race([sleep(dueIn, AbortSignal.any([signal, stop.signal])).catch(() => {}), closed]);
      } finally {
        stop.abort();
        this.wake.delete(resolveClosed);
      }
    }
    throwIfAborted(signal);
  }

  private trip(error: ProviderRefusal): void {
    this.lastProbeAt = this.clock.now();
    if (this.open) return;
    this.open = true;
    this.pausedSince = this.clock.now();
    this.metrics.providerPaused.set({ provider: this.provider }, 1);
    this.logger?.error(
      { target: this.provider, err: error, probeIntervalMs: this.probeIntervalMs },
      `${this.provider} refuses the account (${error.message}): purges to ${this.provider} are paused and probed every ${Math.round(this.probeIntervalMs / 1000)} s until one succeeds${error.hint ? `; ${error.hint}` : ''}`,
    );
  }

  private close(): void {
    if (!this.open) return;
    this.open = false;
    this.metrics.providerPaused.set({ provider: this.provider }, 0);
    this.logger?.info(
      { target: this.provider, pausedMs: this.clock.now() - this.pausedSince },
      `${this.provider} accepts purges again: resumed`,
    );
    for (const resolve of this.wake) resolve();
    this.wake.clear();
  }
}

function throwIfAborted(signal: AbortSignal): void {
  if (signal.aborted) throw new WalpurgeError(ErrorCode.Aborted, 'aborted');
}
