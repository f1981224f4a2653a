import type { CliIo } from '../cli-io.js';

/**
 * Aborts when the user interrupts: io.signal (tests) or, in the real process, the first SIGINT or
 * SIGTERM. Long commands check it between batches, so they stop cleanly where they can resume.
 */
export function stopSignal(io: CliIo): { signal: AbortSignal; dispose(): void } {
  const controller = new AbortController();
  const stop = (): void => controller.abort(new Error('interrupted'));
  if (io.signal?.aborted) stop();
  io.signal?.addEventListener('abort', stop, { once: true });
  if (io.handleSignals) {
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  }
  return {
    signal: controller.signal,
    dispose: () => {
      io.signal?.removeEventListener('abort', stop);
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
    },
  };
}
