import type { WalpurgeConfig } from '@walpurge/config';
import { configOption, stringOption, type CommandSpec } from '../command.js';
import { loadCliConfig } from '../load-cli-config.js';
import { ROLES, SECTIONS_NOT_READ_BY, type Role } from '../run/roles.js';
import { runUntilStopped, startWalpurge, type RunningWalpurge } from '../run/start-walpurge.js';
import { startTracing } from '../run/tracing-sdk.js';
import { httpPortOption, logLevelOption, parsePort } from './shared-options.js';

export const runCommand: CommandSpec = {
  name: 'run',
  summary:
    'Run walpurge: the listener, the invalidator, the write-behind flusher, the consistency observer, or all of them in one process.',
  usage:
    'walpurge run [--config FILE] [--role all|listener|invalidator|flusher|inspector] [--http-port PORT] [--log-level LEVEL]',
  options: {
    config: configOption,
    role: {
      type: 'string',
      description: 'Which services to run.',
      env: 'WALPURGE_ROLE',
      default: 'all',
      choices: ROLES,
      valueName: 'ROLE',
    },
    'http-port': httpPortOption,
    'log-level': logLevelOption,
  },
  details: `--role all with transport: inline is the embedded mode: the listener hands committed changes to the
invalidator in-process and acknowledges them to PostgreSQL only after their purges succeeded.
With transport: kafka the roles talk through Kafka and can run as separate processes.
SIGTERM/SIGINT drain and stop gracefully (a second signal exits at once).
Tracing is off unless the standard OTEL_* variables turn it on (OTEL_TRACES_EXPORTER, or
OTEL_EXPORTER_OTLP_ENDPOINT); see docs/tracing.md.`,
  async run({ io, options }) {
    const role = (stringOption(options, 'role') ?? 'all') as Role;
    // Before anything else: services decide once, when built, whether they trace.
    const tracing = startTracing(io.env, role);
    let running: RunningWalpurge;
    let deadlineMs: number;
    try {
      const loaded = await loadCliConfig(options, io, { unusedSections: SECTIONS_NOT_READ_BY[role] });
      const httpPort = parsePort(options, 'run');
      const logLevel = stringOption(options, 'log-level');
      deadlineMs = shutdownDeadlineMs(loaded.config);
      running = await startWalpurge({
        config: loaded.config,
        role,
        skippedSections: loaded.skippedSections,
        problemAt: loaded.problemAt,
        configFile: loaded.file,
        tracing,
        ...(httpPort !== undefined ? { httpPort } : {}),
        ...(logLevel ? { logLevel } : {}),
      });
    } catch (error) {
      await tracing.shutdown();
      throw error;
    }
    return runUntilStopped(running, io, deadlineMs);
  },
};

/**
 * The hard deadline of a graceful shutdown before `walpurge run` exits on its own. Services stop one
 * after the other (reverse start order), so it covers the invalidator's and the flusher's drain
 * deadlines in sequence, plus room for the listener's final acknowledgement and closing connections.
 * Exported so the deploy manifests' grace periods are checked against the real number.
 */
export function shutdownDeadlineMs(config: Pick<WalpurgeConfig, 'invalidator' | 'flusher'>): number {
  const drains = config.invalidator.stopTimeoutMs + (config.flusher?.drainTimeoutMs ?? 0);
  return Math.max(30_000, drains + 15_000);
}
