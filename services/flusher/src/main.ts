#!/usr/bin/env node
/**
 * Standalone flusher: `node dist/main.js --config walpurge.yaml`, the same as `walpurge run --role
 * flusher` but without tracing: the OpenTelemetry SDK is set up by `walpurge run` only, which keeps
 * this package on @opentelemetry/api (docs/tracing.md). Options also from env: WALPURGE_CONFIG,
 * WALPURGE_HTTP_PORT, LOG_LEVEL.
 */
import { loadConfig } from '@walpurge/config';
import { runStandalone } from '@walpurge/core';
import { createFlusher } from './flusher.js';

await runStandalone({
  role: 'flusher',
  loadConfig: async (file) => (await loadConfig(file)).config,
  settings: (config) => ({
    logLevel: config.log.level,
    pretty: config.log.pretty,
    httpPort: config.http.port,
    httpHost: config.http.host,
    // stop() gives up on the batch in flight after drainTimeoutMs and needs a few seconds more.
    shutdownTimeoutMs: (config.flusher?.drainTimeoutMs ?? 15_000) + 15_000,
  }),
  create: ({ config, logger, registry }) => createFlusher({ config, logger, registry }),
  notReadyReason: 'queue Redis or worker not ready',
});
