/**
 * Standalone listener: `node dist/main.js --config walpurge.yaml` (same as `walpurge run --role
 * listener`). Options also from env: WALPURGE_CONFIG, WALPURGE_HTTP_PORT, LOG_LEVEL.
 */
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig } from '@walpurge/config';
import {
  ServiceGroup,
  createLogger,
  createMetricsRegistry,
  isWalpurgeError,
  startOpsServer,
  stopOnSignals,
} from '@walpurge/core';
import { createListener } from './listener.js';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { config: { type: 'string', short: 'c' } },
    allowPositionals: false,
  });
  const file = values.config ?? process.env['WALPURGE_CONFIG'];
  if (!file) {
    process.stderr.write('usage: walpurge-listener --config walpurge.yaml (or WALPURGE_CONFIG)\n');
    process.exit(2);
  }
  const { config } = await loadConfig(file);
  const logger = createLogger({
    level: process.env['LOG_LEVEL'] ?? config.log.level,
    pretty: config.log.pretty,
    name: 'walpurge-listener',
  });
  const registry = createMetricsRegistry();
  const group: ServiceGroup = new ServiceGroup(
    [createListener({ config, logger, registry, onFatal: () => void shutdown(1) })],
    logger,
  );
  const port = process.env['WALPURGE_HTTP_PORT']
    ? Number(process.env['WALPURGE_HTTP_PORT'])
    : config.http.port;
  const ops = await startOpsServer({
    port,
    host: config.http.host,
    registry,
    liveness: [{ name: 'process', check: () => true }],
    readiness: [
      {
        name: 'listener',
        check: () => group.isReady() || 'not streaming (starting, reconnecting or standby)',
      },
    ],
  });
  logger.info({ port: ops.port }, 'ops server listening');

  let exiting = false;
  const exit = (code: number): void => {
    if (exiting) return;
    exiting = true;
    void ops.close().finally(() => process.exit(code));
  };
  const shutdown = async (code: number): Promise<void> => {
    await group.stop().catch((error: unknown) => logger.error({ err: error }, 'stop failed'));
    exit(code);
  };
  stopOnSignals(group, { timeoutMs: 30_000, log: logger, exit });
  await group.start();
}

main().catch((error: unknown) => {
  if (error instanceof ConfigError || isWalpurgeError(error))
    process.stderr.write(`${error.toUserMessage()}\n`);
  else process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
