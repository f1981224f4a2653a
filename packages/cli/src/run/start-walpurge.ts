import {
  ServiceGroup,
  createLogger,
  createMetricsRegistry,
  startOpsServer,
  stopOnSignals,
  type Logger,
  type WalpurgeError,
} from '@walpurge/core';
import type { SkippedSection, WalpurgeConfig } from '@walpurge/config';
import { ExitCode, type CliIo } from '../cli-io.js';
import { reportError } from '../report-error.js';
import {
  composeServices,
  findInspector,
  type ComposeOptions,
  type ReadyService,
} from './compose-services.js';
import type { Role } from './roles.js';
import type { Tracing } from './tracing-sdk.js';

export interface RunningWalpurge {
  readonly services: readonly ReadyService[];
  readonly group: ServiceGroup;
  readonly opsPort: number;
  readonly logger: Logger;
  isReady(): boolean;
  /** Resolves with the first fatal error a service reported (the process should stop, exit 1). */
  readonly fatal: Promise<WalpurgeError>;
  /** Drains and stops the services, then the ops server. Idempotent. */
  stop(): Promise<void>;
}

export interface StartOptions {
  config: WalpurgeConfig;
  role: Role;
  httpPort?: number;
  logLevel?: string;
  /** Instead of the default stdout logger (quickstart keeps the terminal for its own output). */
  logger?: Logger;
  onPurged?: ComposeOptions['onPurged'];
  problemAt?: ComposeOptions['problemAt'];
  configFile?: string;
  /** Config sections this role left out (their variables unset), logged at start. */
  skippedSections?: readonly SkippedSection[];
  /** `walpurge run`'s tracing (startTracing): logged at start, its spans flushed after the services stopped. */
  tracing?: Tracing;
}

/** Starts a role's services behind one ops server (/metrics, /healthz, /readyz). Used by `run` and `quickstart`. */
export async function startWalpurge(options: StartOptions): Promise<RunningWalpurge> {
  const { config } = options;
  const logger =
    options.logger ??
    createLogger({
      level: options.logLevel ?? config.log.level,
      ...(config.log.pretty !== undefined ? { pretty: config.log.pretty } : {}),
    });
  options.tracing?.log(logger);
  for (const { section, variables } of options.skippedSections ?? [])
    logger.info(
      { section, variables, role: options.role },
      `config section ${section} left out: role ${options.role} does not read it, and it needs ${variables.join(', ')} (not set, or a file that cannot be read)`,
    );
  const registry = createMetricsRegistry();
  let reportFatal: (error: WalpurgeError) => void = () => {};
  const fatal = new Promise<WalpurgeError>((resolve) => {
    reportFatal = resolve;
  });
  const services = composeServices({
    role: options.role,
    config,
    logger,
    registry,
    onFatal: (error) => {
      logger.fatal({ err: error }, `stopping: ${error.message}`);
      reportFatal(error);
    },
    ...(options.onPurged ? { onPurged: options.onPurged } : {}),
    ...(options.problemAt ? { problemAt: options.problemAt } : {}),
    ...(options.configFile ? { configFile: options.configFile } : {}),
  });
  const group = new ServiceGroup(services, logger);
  const inspector = findInspector(services);
  const ops = await startOpsServer({
    ...(inspector ? { json: { '/inspect': () => inspector.report() } } : {}),
    port: options.httpPort ?? config.http.port,
    host: config.http.host,
    registry,
    liveness: [{ name: 'process', check: () => true }],
    // Readiness reflects real state: every started service's own isReady (slot streaming, consumer joined…).
    readiness: services.map((service) => ({
      name: service.name,
      check: () => service.isReady() || (service.notReadyReason?.() ?? 'not ready'),
    })),
  });
  try {
    await group.start();
  } catch (error) {
    await ops.close();
    throw error;
  }
  logger.info(
    {
      role: options.role,
      transport: config.transport,
      opsPort: ops.port,
      services: services.map((s) => s.name),
    },
    'walpurge running',
  );
  let stopping: Promise<void> | undefined;
  return {
    services,
    group,
    opsPort: ops.port,
    logger,
    fatal,
    isReady: () => group.isReady(),
    stop: () =>
      (stopping ??= (async () => {
        try {
          await group.stop();
        } finally {
          await ops.close();
          // After the services: the spans of the last transactions and batches go out too.
          await options.tracing?.shutdown();
        }
      })()),
  };
}

/**
 * Waits until something stops walpurge and returns the exit code: SIGTERM/SIGINT (real process),
 * io.signal (tests), or a fatal service error (exit 1).
 */
export function runUntilStopped(
  running: RunningWalpurge,
  io: CliIo,
  shutdownTimeoutMs: number,
): Promise<number> {
  return new Promise<number>((resolve) => {
    let done = false;
    let unregister = (): void => {};
    const finish = (code: number): void => {
      if (done) return;
      done = true;
      unregister();
      resolve(code);
    };
    const stopWith = (code: number): void => {
      running.stop().then(
        () => finish(code),
        (error: unknown) => {
          running.logger.error({ err: error }, 'shutdown finished with errors');
          finish(ExitCode.Failure);
        },
      );
    };
    if (io.handleSignals) {
      // stopOnSignals stops the group; the ops server closes with it via running.stop().
      unregister = stopOnSignals(running.group, {
        timeoutMs: shutdownTimeoutMs,
        log: running.logger,
        exit: (code) => {
          if (code === 0) stopWith(0);
          else finish(code);
        },
      });
    }
    // The same one line (and hint) a failed start prints: a role that meets a refusal after it
    // started (the listener connects to Kafka at its first batch) must say why it stopped too.
    void running.fatal.then((error) => {
      reportError(error, io);
      stopWith(ExitCode.Failure);
    });
    if (io.signal?.aborted) stopWith(ExitCode.Ok);
    else io.signal?.addEventListener('abort', () => stopWith(ExitCode.Ok), { once: true });
  });
}
