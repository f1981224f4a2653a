/**
 * Standalone listener: `node dist/main.js --config walpurge.yaml`, the same as `walpurge run --role
 * listener` but without tracing: the OpenTelemetry SDK is set up by `walpurge run` only, which keeps
 * this package on @opentelemetry/api (docs/tracing.md). Options also from env: WALPURGE_CONFIG,
 * WALPURGE_HTTP_PORT, LOG_LEVEL.
 */
import { loadConfig } from '@walpurge/config';
import { runStandalone } from '@walpurge/core';
import { createListener } from './listener.js';

await runStandalone({
  role: 'listener',
  loadConfig: async (file) => (await loadConfig(file)).config,
  settings: (config) => ({
    logLevel: config.log.level,
    pretty: config.log.pretty,
    httpPort: config.http.port,
    httpHost: config.http.host,
    shutdownTimeoutMs: 30_000,
  }),
  create: ({ config, logger, registry, onFatal }) => createListener({ config, logger, registry, onFatal }),
  notReadyReason: 'not streaming (starting, reconnecting or standby)',
});
