import type { WalpurgeConfig } from '@walpurge/config';
import type { Logger, Registry, Service, WalpurgeError } from '@walpurge/core';
import type { ChangeEvent } from '@walpurge/protocol';
import { createListener } from '@walpurge/listener';
import { createInvalidator, type Invalidator } from '@walpurge/invalidator';
import { createFlusher } from '@walpurge/flusher';
import { createInspector, type Inspector } from '@walpurge/inspector';
import type { ProblemAt } from '@walpurge/rules';
import { UsageError } from '../cli-io.js';
import type { Role } from './roles.js';

export type ReadyService = Service & {
  isReady(): boolean;
  /** Why the service is not ready, for /readyz (services that can tell). */
  notReadyReason?(): string | undefined;
};

/** The consistency observer among a role's services, if it runs (served at GET /inspect). */
export const findInspector = (services: readonly ReadyService[]): Inspector | undefined =>
  services.find((service): service is Inspector => service.name === 'inspector' && 'report' in service);

export interface ComposeOptions {
  role: Role;
  config: WalpurgeConfig;
  logger: Logger;
  registry: Registry;
  /** The listener cannot go on (slot dropped, privileges revoked): stop with exit code 1. */
  onFatal: (error: WalpurgeError) => void;
  /** Embedded mode only: called after the purges of a batch succeeded (quickstart's live view). */
  onPurged?: (events: readonly ChangeEvent[], purgedAt: number) => void;
  /** Locates rule problems the invalidator finds against the live schema at start. */
  problemAt?: ProblemAt;
  configFile?: string;
}

/**
 * Embedded mode's listener sink: a commit is acknowledged once its purges resolved. The observer's
 * tap is offered the events after that, synchronously; offer never awaits nor throws, so a slow or
 * failing observer (its Redis unreachable) costs checks, never purges.
 */
export function inlineSink(
  invalidator: Pick<Invalidator, 'handle'>,
  inspector: Pick<Inspector, 'offer'> | undefined,
  onPurged?: ComposeOptions['onPurged'],
): { publish(events: readonly ChangeEvent[], signal?: AbortSignal): Promise<void> } {
  return {
    publish: async (events, signal) => {
      await invalidator.handle(events, signal);
      inspector?.offer(events);
      onPurged?.(events, Date.now());
    },
  };
}

function need(condition: unknown, message: string): void {
  if (!condition) throw new UsageError(message, 'run');
}

/**
 * The one composition root: which services a role runs, in start order (the group stops them in
 * reverse). Consumers start before producers, so on shutdown the producer stops first and nothing
 * is acknowledged after its downstream went away.
 */
export function composeServices({
  role,
  config,
  logger,
  registry,
  onFatal,
  onPurged,
  problemAt,
  configFile,
}: ComposeOptions): ReadyService[] {
  const inline = config.transport === 'inline';
  const base = { config, logger, registry };
  const located = { ...(problemAt ? { problemAt } : {}), ...(configFile ? { configFile } : {}) };
  if (role === 'listener' || role === 'invalidator' || role === 'inspector') {
    need(
      !inline,
      `role '${role}' alone needs transport: kafka; with transport: inline the listener hands events to the invalidator in the same process (use --role all)`,
    );
  }
  if (role === 'listener' || role === 'all')
    need(config.database, `role '${role}' needs a database section in the config`);
  if (role === 'flusher') need(config.flusher, "role 'flusher' needs a flusher section in the config");
  if (role === 'inspector')
    need(config.inspect, "role 'inspector' needs an inspect section in the config (docs/consistency.md)");

  switch (role) {
    case 'listener':
      return [createListener({ ...base, onFatal })];
    case 'invalidator':
      return [createInvalidator({ ...base, ...located, consume: 'kafka' })];
    case 'flusher':
      return [createFlusher(base)];
    case 'inspector':
      return [createInspector({ ...base, consume: 'kafka' })];
    case 'all': {
      const services: ReadyService[] = [];
      // The observer is an extra in this role: it starts last (after the purge path is up), a failed
      // start is logged and counted but does not stop the role, and it never gates /readyz.
      const inspector = config.inspect
        ? createInspector({ ...base, consume: inline ? 'tap' : 'kafka', startFailure: 'tolerated' })
        : undefined;
      if (inline) {
        // Embedded mode: the listener's "durable downstream" is the purge itself, so a commit's
        // LSN is acknowledged only after invalidator.handle resolved for all of its events.
        const invalidator = createInvalidator({ ...base, ...located, consume: 'none' });
        // The observer's tap: after the purges resolved, synchronous and bounded, never throws
        // (before the observer started, or when its start failed, it drops the events).
        const sink = inlineSink(invalidator, inspector, onPurged);
        services.push(invalidator, createListener({ ...base, sink, onFatal }));
      } else {
        services.push(
          createInvalidator({ ...base, ...located, consume: 'kafka' }),
          createListener({ ...base, onFatal }),
        );
      }
      if (config.flusher) services.push(createFlusher(base));
      // Last: with Kafka its own consumer group, after the listener created the topic.
      if (inspector) services.push(inspector);
      return services;
    }
  }
}
