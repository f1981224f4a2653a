import { parseConfigText, type WalpurgeConfig } from '@walpurge/config';
import { createLogger, type Logger } from '@walpurge/core';
import { WaitForAbortError, waitFor } from '@walpurge/testing';
// The CLI's own composition root (what `walpurge run --role …` starts), not a re-implementation:
// the e2e suites exercise the wiring operators run. Imported by path because the `walpurge`
// package exports only its command-line entry.
import { startWalpurge, type RunningWalpurge } from '../../../packages/cli/src/run/start-walpurge.js';
import type { Role } from '../../../packages/cli/src/run/roles.js';
import { sumSamples } from './metric-samples.js';

export const e2eLogger: Logger = createLogger({
  level: process.env['LOG_LEVEL'] ?? 'error',
  pretty: false,
});

/**
 * Parses walpurge.yaml text exactly as `walpurge run --config` does (env substitution, zod,
 * located errors), so the suites also prove that the documented configuration drives the pipeline.
 */
export function parseE2eConfig(yaml: string, env: Record<string, string>): WalpurgeConfig {
  return parseConfigText(yaml, 'e2e.walpurge.yaml', { env }).config;
}

export interface WalpurgeStack {
  readonly roles: readonly RunningWalpurge[];
  /** Stops the roles in reverse start order (producers before consumers). Idempotent. */
  stop(): Promise<void>;
}

/**
 * Starts one `walpurge run` per role, in the order given (like separate processes of a deployment),
 * each with its ops server on a free port, and waits until every role reports ready: the slot is
 * streaming and the consumer group has partitions assigned. Any fatal error fails the start.
 */
export async function startStack(config: WalpurgeConfig, roles: readonly Role[]): Promise<WalpurgeStack> {
  const running: RunningWalpurge[] = [];
  let fatal: Error | undefined;
  const stop = async (): Promise<void> => {
    for (const role of running.splice(0).reverse()) await role.stop();
  };
  try {
    for (const role of roles) {
      const started = await startWalpurge({ config, role, httpPort: 0, logger: e2eLogger });
      running.push(started);
      void started.fatal.then((error) => (fatal = error));
    }
    await waitFor(
      `walpurge roles ${roles.join(', ')} ready`,
      async () => {
        if (fatal) throw new WaitForAbortError(`walpurge stopped: ${fatal.message}`, { cause: fatal });
        return running.every((role) => role.isReady());
      },
      { timeoutMs: 90_000, intervalMs: 50 },
    );
  } catch (error) {
    await stop().catch(() => undefined);
    throw error;
  }
  return { roles: running, stop };
}

/**
 * Sum of a Prometheus sample over every role's /metrics (the ops endpoint operators scrape), for
 * samples whose labels include `labels`.
 */
export async function scrapeMetric(
  stack: WalpurgeStack,
  name: string,
  labels: Record<string, string> = {},
): Promise<number> {
  let total = 0;
  for (const role of stack.roles) {
    const text = await (await fetch(`http://127.0.0.1:${role.opsPort}/metrics`)).text();
    total += sumSamples(text, name, labels) ?? 0;
  }
  return total;
}

/**
 * The part of walpurge.yaml every end-to-end suite shares: its own slot, publication, topics and key
 * prefix (from NAME / PREFIX), both transports, fast status and coalescing. Suites append their
 * `flusher` section and rules; parseE2eConfig fills the variables.
 */
export const E2E_STACK_CONFIG = `
transport: \${TRANSPORT}
database:
  url: \${DATABASE_URL}
  slot: \${NAME}
  publication: \${NAME}
  statusIntervalMs: 500
  heartbeatIntervalMs: 0
kafka:
  brokers: ['\${KAFKA_BROKER}']
  topic: \${NAME}
  deadLetterTopic: \${NAME}_dlq
  consumerGroup: \${NAME}
  partitions: 3
redis:
  url: \${REDIS_URL}
  keyPrefix: '\${PREFIX}'
http: { host: 127.0.0.1 }
invalidator:
  coalesceWindowMs: 5
`;
