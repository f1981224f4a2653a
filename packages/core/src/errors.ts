/**
 * Every error walpurge raises on purpose carries a stable code (for docs, alerts and tests) and
 * whether retrying the same operation can help. Retriable errors drive backoff loops; the rest stop
 * the process with a clear message instead of spinning forever.
 */
export const ErrorCode = {
  ConfigNotFound: 'WP_CONFIG_NOT_FOUND',
  ConfigSyntax: 'WP_CONFIG_SYNTAX',
  ConfigInvalid: 'WP_CONFIG_INVALID',
  ConfigEnvMissing: 'WP_CONFIG_ENV_MISSING',
  RuleInvalid: 'WP_RULE_INVALID',
  SchemaMismatch: 'WP_SCHEMA_MISMATCH',
  DatabaseUnreachable: 'WP_DATABASE_UNREACHABLE',
  DatabaseSetup: 'WP_DATABASE_SETUP',
  WalLevel: 'WP_WAL_LEVEL',
  Privileges: 'WP_PRIVILEGES',
  SlotInvalidated: 'WP_SLOT_INVALIDATED',
  SlotBusy: 'WP_SLOT_BUSY',
  Replication: 'WP_REPLICATION',
  KafkaUnavailable: 'WP_KAFKA_UNAVAILABLE',
  KafkaSecurity: 'WP_KAFKA_SECURITY',
  RedisUnavailable: 'WP_REDIS_UNAVAILABLE',
  RedisUnsafeForQueue: 'WP_REDIS_UNSAFE_FOR_QUEUE',
  PurgeFailed: 'WP_PURGE_FAILED',
  EventInvalid: 'WP_EVENT_INVALID',
  FlushFailed: 'WP_FLUSH_FAILED',
  ShutdownTimeout: 'WP_SHUTDOWN_TIMEOUT',
  Aborted: 'WP_ABORTED',
  Internal: 'WP_INTERNAL',
  SlotCapacity: 'WP_SLOT_CAPACITY',
  ReplicaIdentity: 'WP_REPLICA_IDENTITY',
  PublicationMismatch: 'WP_PUBLICATION_MISMATCH',
  SlotMissing: 'WP_SLOT_MISSING',
  WriteInvalid: 'WP_WRITE_INVALID',
  WriteBehindCacheFailed: 'WP_WRITE_BEHIND_CACHE_FAILED',
  WriteBehindNotDurable: 'WP_WRITE_BEHIND_NOT_DURABLE',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export interface WalpurgeErrorOptions {
  retriable?: boolean;
  /** One line telling the operator what to do about it. */
  hint?: string;
  cause?: unknown;
  details?: Record<string, unknown>;
}

export class WalpurgeError extends Error {
  readonly code: ErrorCode;
  readonly retriable: boolean;
  readonly hint: string | undefined;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, options: WalpurgeErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'WalpurgeError';
    this.code = code;
    this.retriable = options.retriable ?? false;
    this.hint = options.hint;
    this.details = options.details;
  }

  /** The text shown to a person: message plus hint, never a stack trace. */
  toUserMessage(): string {
    return this.hint ? `${this.message}\n  hint: ${this.hint}` : this.message;
  }
}

export function isWalpurgeError(error: unknown): error is WalpurgeError {
  return error instanceof WalpurgeError;
}

/** Retriable unless we know better: unknown I/O errors are usually transient. */
export function isRetriable(error: unknown): boolean {
  if (error instanceof WalpurgeError) return error.retriable;
  if (error instanceof Error && 'retriable' in error && typeof error.retriable === 'boolean') {
    return error.retriable;
  }
  return true;
}

export function errorMessage(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}
