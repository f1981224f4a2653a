import { parseArgs } from 'node:util';
import { isWalpurgeError } from './errors.js';
import { ServiceGroup, type Service } from './lifecycle.js';
import { createLogger, type Logger } from './logger.js';
import { redactSecrets } from './redact.js';
import { createMetricsRegistry, type Registry } from './metrics.js';
import { startOpsServer, type OpsServer } from './ops-server.js';
import { stopOnSignals } from './signals.js';

/** What a standalone entry point needs from its (already validated) configuration. */
export interface StandaloneSettings {
  logLevel: string;
  pretty?: boolean | undefined;
  httpPort: number;
  httpHost: string;
  /** Hard deadline for a graceful stop after SIGTERM/SIGINT. */
  shutdownTimeoutMs: number;
}

export interface StandaloneContext<Config> {
  config: Config;
  logger: Logger;
  registry: Registry;
  /** A service's unrecoverable error: the process stops gracefully and exits 1. */
  onFatal(error: unknown): void;
}

export type StandaloneService = Service & { notReadyReason?(): string | undefined };

export interface StandaloneSpec<Config> {
  /** `listener`, `invalidator` or `flusher`: the process name and the metrics' `role` label. */
  role: string;
  loadConfig(file: string): Promise<Config>;
  settings(config: Config): StandaloneSettings;
  create(context: StandaloneContext<Config>): StandaloneService;
  /** Why /readyz says no while the service is not ready and cannot tell itself. */
  notReadyReason: string;
}

/**
 * The whole of a service's own entry point (`node dist/main.js --config walpurge.yaml`), which does
 * what `walpurge run --role <role>` does for that one role: config from --config or WALPURGE_CONFIG,
 * ops port from --http-port / WALPURGE_HTTP_PORT, LOG_LEVEL, an ops server with /metrics /healthz
 * /readyz, and a graceful stop on SIGTERM/SIGINT with a hard deadline. User mistakes print one line,
 * never a stack trace.
 */
export async function runStandalone<Config>(spec: StandaloneSpec<Config>): Promise<void> {
  const usage = `usage: walpurge-${spec.role} --config walpurge.yaml [--http-port 9464] (or WALPURGE_CONFIG, WALPURGE_HTTP_PORT, LOG_LEVEL)\n`;
  let values: { config?: string | undefined; 'http-port'?: string | undefined };
  try {
    ({ values } = parseArgs({
      options: { config: { type: 'string', short: 'c' }, 'http-port': { type: 'string' } },
      allowPositionals: false,
    }));
  } catch (error) {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n${usage}`);
    process.exit(2);
  }
  const file = values.config ?? process.env['WALPURGE_CONFIG'];
  const portText = values['http-port'] ?? process.env['WALPURGE_HTTP_PORT'];
  const port = portText === undefined ? undefined : Number(portText);
  if (!file || (port !== undefined && !(Number.isInteger(port) && port >= 0 && port < 65_536))) {
    process.stderr.write(usage);
    process.exit(2);
  }

  try {
    const config = await spec.loadConfig(file);
    const settings = spec.settings(config);
    const logger = createLogger({
      level: process.env['LOG_LEVEL'] ?? settings.logLevel,
      name: `walpurge-${spec.role}`,
      ...(settings.pretty === undefined ? {} : { pretty: settings.pretty }),
    });
    const registry = createMetricsRegistry({ labels: { role: spec.role } });
    // Filled in below; the fatal handler may run before either exists.
    const running: { group?: ServiceGroup; ops?: OpsServer } = {};
    let exiting = false;
    const exit = (code: number): void => {
      if (exiting) return;
      exiting = true;
      void (running.ops?.close() ?? Promise.resolve()).finally(() => process.exit(code));
    };
    const service = spec.create({
      config,
      logger,
      registry,
      onFatal: (error) => {
        logger.fatal({ err: error }, 'stopping after a fatal error');
        void (running.group?.stop() ?? Promise.resolve()).finally(() => exit(1));
      },
    });
    const group = new ServiceGroup([service], logger);
    running.group = group;
    const ops = await startOpsServer({
      port: port ?? settings.httpPort,
      host: settings.httpHost,
      registry,
      liveness: [{ name: 'process', check: () => true }],
      readiness: [
        {
          name: spec.role,
          check: () => group.isReady() || (service.notReadyReason?.() ?? spec.notReadyReason),
        },
      ],
    });
    running.ops = ops;
    logger.info({ port: ops.port }, 'ops server listening');
    stopOnSignals(group, { timeoutMs: settings.shutdownTimeoutMs, log: logger, exit });
    await group.start();
  } catch (error) {
    // WalpurgeErrors (ConfigError included) are user-facing: one located, actionable message.
    const text = isWalpurgeError(error)
      ? error.toUserMessage()
      : error instanceof Error
        ? (error.stack ?? error.message)
        : String(error);
    // An unexpected error's message (and stack) may quote a connection string: redact it like the
    // logs do, stderr ends up in the same log pipeline.
    process.stderr.write(`walpurge ${spec.role}: ${redactSecrets(text)}\n`);
    process.exit(1);
  }
}
