#!/usr/bin/env node
/**
 * Standalone flusher: `node dist/main.js --config walpurge.yaml` (same as `walpurge run --role flusher`).
 * Options: --config FILE (or WALPURGE_CONFIG), --http-port N (or WALPURGE_HTTP_PORT), LOG_LEVEL.
 */
import { loadConfig } from '@walpurge/config';
import {
  ServiceGroup,
  createLogger,
  createMetricsRegistry,
  isWalpurgeError,
  startOpsServer,
  stopOnSignals,
} from '@walpurge/core';
import { createFlusher } from './flusher.js';

function option(args: readonly string[], name: string): string | undefined {
  for (let i = 0; i < args.length; i += 1) {
    const arg = args[i]!;
    if (arg === `--${name}`) return args[i + 1];
    if (arg.startsWith(`--${name}=`)) return arg.slice(name.length + 3);
  }
  return undefined;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const file = option(args, 'config') ?? process.env['WALPURGE_CONFIG'];
  if (!file) {
    process.stderr.write('usage: flusher --config walpurge.yaml [--http-port 9464]\n');
    process.exit(2);
  }
  const { config } = await loadConfig(file);
  const logger = createLogger({
    level: process.env['LOG_LEVEL'] ?? config.log.level,
    name: 'walpurge-flusher',
    ...(config.log.pretty === undefined ? {} : { pretty: config.log.pretty }),
  });
  const registry = createMetricsRegistry({ labels: { role: 'flusher' } });
  const flusher = createFlusher({ config, logger, registry });
  const group = new ServiceGroup([flusher], logger);
  const port = Number(option(args, 'http-port') ?? process.env['WALPURGE_HTTP_PORT'] ?? config.http.port);
  const ops = await startOpsServer({
    port,
    host: config.http.host,
    registry,
    liveness: [{ name: 'process', check: () => true }],
    readiness: [{ name: 'flusher', check: () => flusher.isReady() || 'queue Redis or worker not ready' }],
  });
  logger.info({ port: ops.port }, 'ops server listening');
  stopOnSignals(group, {
    timeoutMs: (config.flusher?.drainTimeoutMs ?? 15_000) + 15_000,
    log: logger,
    exit: (code) => {
      void ops.close().finally(() => process.exit(code));
    },
  });
  await group.start();
}

main().catch((error: unknown) => {
  const text = isWalpurgeError(error)
    ? `${error.code}: ${error.toUserMessage()}`
    : error instanceof Error
      ? (error.stack ?? error.message)
      : String(error);
  process.stderr.write(`walpurge flusher: ${text}\n`);
  process.exit(1);
});
