import { parseArgs } from 'node:util';
import { loadConfig } from '@walpurge/config';
import {
  createLogger,
  createMetricsRegistry,
  isWalpurgeError,
  ServiceGroup,
  startOpsServer,
  stopOnSignals,
} from '@walpurge/core';
import { createInvalidator } from './create-invalidator.js';

/** Standalone invalidator: `node dist/main.js --config walpurge.yaml` (same as `walpurge run --role invalidator`). */
async function main(): Promise<void> {
  const { values } = parseArgs({ options: { config: { type: 'string', short: 'c' } } });
  const file = values.config ?? process.env['WALPURGE_CONFIG'];
  if (!file) {
    console.error('usage: walpurge-invalidator --config FILE (or WALPURGE_CONFIG)');
    process.exit(2);
  }
  const loaded = await loadConfig(file);
  const { config } = loaded;
  const logger = createLogger({
    level: process.env['LOG_LEVEL'] ?? config.log.level,
    ...(config.log.pretty === undefined ? {} : { pretty: config.log.pretty }),
    name: 'walpurge-invalidator',
  });
  const registry = createMetricsRegistry({ labels: { role: 'invalidator' } });
  const invalidator = createInvalidator({
    config,
    logger,
    registry,
    consume: 'kafka',
    problemAt: loaded.problemAt,
    configFile: loaded.file,
  });
  const group = new ServiceGroup([invalidator], logger);
  const envPort = process.env['WALPURGE_HTTP_PORT'];
  const ops = await startOpsServer({
    port: envPort ? Number(envPort) : config.http.port,
    host: config.http.host,
    registry,
    liveness: [{ name: 'process', check: () => true }],
    readiness: [{ name: 'invalidator', check: () => invalidator.notReadyReason() ?? true }],
  });
  logger.info({ port: ops.port }, 'ops server listening');
  stopOnSignals(group, { timeoutMs: config.invalidator.stopTimeoutMs + 5_000, log: logger });
  await group.start();
}

main().catch((error: unknown) => {
  if (isWalpurgeError(error)) console.error(error.toUserMessage());
  else console.error(error);
  process.exit(1);
});
