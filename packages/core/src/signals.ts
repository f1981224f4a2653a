import { ErrorCode, WalpurgeError } from './errors.js';
import type { ServiceGroup, ServiceGroupLogger } from './lifecycle.js';

export interface ShutdownOptions {
  /** After this long the process exits even if a service has not finished draining. */
  timeoutMs: number;
  log?: ServiceGroupLogger;
  signals?: readonly NodeJS.Signals[];
  exit?: (code: number) => void;
}

/**
 * Wires SIGTERM/SIGINT to a graceful stop with a hard deadline (Kubernetes sends SIGKILL after
 * terminationGracePeriodSeconds anyway; exiting on our own terms gives a log line saying why).
 * A second signal skips the wait. Returns a function that unregisters the handlers.
 */
export function stopOnSignals(group: ServiceGroup, options: ShutdownOptions): () => void {
  const exit = options.exit ?? ((code: number) => process.exit(code));
  const signals = options.signals ?? ['SIGTERM', 'SIGINT'];
  let received = 0;

  const onSignal = (signal: NodeJS.Signals): void => {
    received += 1;
    if (received > 1) {
      options.log?.error({ signal }, 'second signal: exiting without waiting for drain');
      exit(130);
      return;
    }
    options.log?.info({ signal, timeoutMs: options.timeoutMs }, 'shutting down');
    const timer = setTimeout(() => {
      const error = new WalpurgeError(
        ErrorCode.ShutdownTimeout,
        `graceful shutdown did not finish within ${options.timeoutMs} ms`,
      );
      options.log?.error({ err: error }, error.message);
      exit(1);
    }, options.timeoutMs);
    timer.unref();
    group.stop().then(
      () => {
        clearTimeout(timer);
        exit(0);
      },
      (error: unknown) => {
        clearTimeout(timer);
        options.log?.error({ err: error }, 'shutdown finished with errors');
        exit(1);
      },
    );
  };

  for (const signal of signals) process.on(signal, onSignal);
  return () => {
    for (const signal of signals) process.off(signal, onSignal);
  };
}
