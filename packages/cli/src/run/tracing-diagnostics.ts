import { DiagLogLevel, diag, type DiagLogger } from '@opentelemetry/api';
import { loggingErrorHandler, setGlobalErrorHandler } from '@opentelemetry/core';
import { errorMessage, type Logger } from '@walpurge/core';

/** At most one warning line per this interval: an unreachable collector fails every export. */
export const DIAGNOSTICS_INTERVAL_MS = 30_000;

/**
 * Sends the SDK's own complaints (failed exports, dropped spans: OpenTelemetry's `diag` warnings
 * and errors, and its global error handler) to the log at warn level, which would otherwise be
 * silent. Rate-limited: the first line goes out at once, the next ones of the same interval are
 * counted and the count rides on the next line. Returns the undo.
 */
export function bridgeTracingDiagnostics(logger: Logger, intervalMs = DIAGNOSTICS_INTERVAL_MS): () => void {
  let lastAt = Number.NEGATIVE_INFINITY;
  let suppressed = 0;
  const warn = (message: string): void => {
    const now = Date.now();
    if (now - lastAt < intervalMs) {
      suppressed += 1;
      return;
    }
    lastAt = now;
    logger.warn(
      { tracing: true, ...(suppressed > 0 ? { suppressed } : {}) },
      `tracing: ${message}${suppressed > 0 ? ` (and ${suppressed} more since the last such line)` : ''}`,
    );
    suppressed = 0;
  };
  const text = (message: string, args: unknown[]): string =>
    [message, ...args.map((arg) => errorMessage(arg))].join(' ');
  const ignore = (): void => undefined;
  const bridge: DiagLogger = {
    error: (message, ...args) => warn(text(message, args)),
    warn: (message, ...args) => warn(text(message, args)),
    info: ignore,
    debug: ignore,
    verbose: ignore,
  };
  diag.setLogger(bridge, { logLevel: DiagLogLevel.WARN, suppressOverrideMessage: true });
  setGlobalErrorHandler((error) => warn(`export failed: ${errorMessage(error)}`));
  return () => {
    diag.disable();
    setGlobalErrorHandler(loggingErrorHandler());
  };
}
