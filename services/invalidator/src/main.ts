/**
 * Standalone invalidator: `node dist/main.js --config walpurge.yaml`, the same as `walpurge run --role
 * invalidator` but without tracing: the OpenTelemetry SDK is set up by `walpurge run` only, which keeps
 * this package on @opentelemetry/api (docs/tracing.md). Options also from env: WALPURGE_CONFIG,
 * WALPURGE_HTTP_PORT, LOG_LEVEL.
 */
import { loadConfig } from '@walpurge/config';
import { runStandalone } from '@walpurge/core';
import { createInvalidator } from './create-invalidator.js';

await runStandalone({
  role: 'invalidator',
  loadConfig,
  settings: ({ config }) => ({
    logLevel: config.log.level,
    pretty: config.log.pretty,
    httpPort: config.http.port,
    httpHost: config.http.host,
    shutdownTimeoutMs: config.invalidator.stopTimeoutMs + 5_000,
  }),
  create: ({ config: loaded, logger, registry }) =>
    createInvalidator({
      config: loaded.config,
      logger,
      registry,
      consume: 'kafka',
      problemAt: loaded.problemAt,
      configFile: loaded.file,
    }),
  notReadyReason: 'consumer has not joined the group',
});
