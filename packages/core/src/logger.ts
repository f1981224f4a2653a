import {
  pino,
  stdSerializers,
  stdTimeFunctions,
  type DestinationStream,
  type Logger,
  type LoggerOptions,
} from 'pino';
import { redactDeep, redactSecrets } from './redact.js';

export type { Logger } from 'pino';

export interface LoggerConfig {
  level?: string;
  /** Human-readable output; defaults to on when stdout is a terminal and NODE_ENV is not production. */
  pretty?: boolean;
  name?: string;
  /** For tests: write JSON lines here instead of stdout. */
  destination?: DestinationStream;
}

function wantsPretty(config: LoggerConfig): boolean {
  if (config.pretty !== undefined) return config.pretty;
  return Boolean(process.stdout.isTTY) && process.env['NODE_ENV'] !== 'production';
}

/**
 * JSON logs for machines, pretty logs for people; secrets scrubbed from every field, message and
 * error before anything is written. Components take `logger.child({ component })`.
 */
export function createLogger(config: LoggerConfig = {}): Logger {
  const options: LoggerOptions = {
    name: config.name ?? 'walpurge',
    level: config.level ?? process.env['LOG_LEVEL'] ?? 'info',
    serializers: { err: (error: unknown) => redactDeep(stdSerializers.err(error as Error)) },
    formatters: { log: (object) => redactDeep(object) as Record<string, unknown> },
    hooks: {
      logMethod(args, method) {
        const scrubbed = args.map((arg: unknown) => (typeof arg === 'string' ? redactSecrets(arg) : arg));
        method.apply(this, scrubbed as Parameters<typeof method>);
      },
    },
    timestamp: stdTimeFunctions.isoTime,
  };
  if (config.destination) return pino(options, config.destination);
  if (wantsPretty(config)) {
    return pino({
      ...options,
      transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'HH:MM:ss.l' } },
    });
  }
  return pino(options);
}
