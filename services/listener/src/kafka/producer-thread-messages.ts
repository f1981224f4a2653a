import type { ConnectionOptions } from 'node:tls';
import type { Message } from 'kafkajs';
import type { KafkaConfig } from '@walpurge/config';
import { ErrorCode, WalpurgeError } from '@walpurge/core';

/**
 * What the listener's Kafka producer thread and the main thread say to each other. Internal to one
 * process (both sides are this package's code), so the shapes are typed, not validated.
 */

/** Given to the thread at its start. */
export interface ProducerThreadData {
  config: KafkaConfig;
  /** The main logger's level: the thread's kafkajs lines below it are not even sent over. */
  logLevel: string;
  /** kafkajs `ssl` as the main thread read it from the PEM files (read once per process start). */
  tls: boolean | ConnectionOptions;
  /** The process has connected with these settings before: a reset handshake is an outage. */
  connectedBefore: boolean;
}

/**
 * The records of one produce request. The values travel as one transferred buffer (no copy per
 * record, and never a pooled Buffer's whole slab), the rest as plain arrays.
 */
export interface PackedRecords {
  keys: string[];
  values: ArrayBuffer;
  /** End offset of each record's value in `values`. */
  valueEnds: Uint32Array;
  headers: Array<Record<string, string>>;
  timestamps: string[];
}

/**
 * The records as the thread takes them: values copied once into one buffer that is transferred, not
 * cloned (a pooled Buffer's clone would copy its whole 8 KiB slab, per record).
 */
export function packRecords(messages: readonly Message[]): {
  records: PackedRecords;
  transfer: ArrayBuffer[];
} {
  const keys: string[] = new Array<string>(messages.length);
  const headers: Array<Record<string, string>> = new Array<Record<string, string>>(messages.length);
  const timestamps: string[] = new Array<string>(messages.length);
  const valueEnds = new Uint32Array(messages.length);
  const values: Buffer[] = new Array<Buffer>(messages.length);
  let total = 0;
  for (const [i, message] of messages.entries()) {
    const value = typeof message.value === 'string' ? Buffer.from(message.value) : message.value;
    if (typeof message.key !== 'string' || value === null || message.timestamp === undefined)
      throw new WalpurgeError(ErrorCode.Internal, 'a change event record without key, value or timestamp');
    keys[i] = message.key;
    headers[i] = (message.headers ?? {}) as Record<string, string>;
    timestamps[i] = message.timestamp;
    values[i] = value;
    total += value.length;
    valueEnds[i] = total;
  }
  // Not Buffer.concat: it may hand out a slice of the shared pool, and transferring that detaches it.
  const packed = new Uint8Array(total);
  let offset = 0;
  for (const value of values) {
    packed.set(value, offset);
    offset += value.length;
  }
  return {
    records: { keys, values: packed.buffer, valueEnds, headers, timestamps },
    transfer: [packed.buffer, valueEnds.buffer as ArrayBuffer],
  };
}

/** The thread's side of packRecords: the values are views into the one transferred buffer. */
export function unpackRecords(records: PackedRecords): Message[] {
  const values = Buffer.from(records.values);
  const messages: Message[] = new Array<Message>(records.keys.length);
  let start = 0;
  for (let i = 0; i < records.keys.length; i += 1) {
    const end = records.valueEnds[i] as number;
    messages[i] = {
      key: records.keys[i] as string,
      value: values.subarray(start, end),
      headers: records.headers[i] as Record<string, string>,
      timestamp: records.timestamps[i] as string,
    };
    start = end;
  }
  return messages;
}

export type ToProducerThread =
  | { type: 'connect'; id: number }
  | { type: 'send'; id: number; topic: string; records: PackedRecords }
  | { type: 'disconnect'; id: number };

export type FromProducerThread =
  | { type: 'done'; id: number }
  | { type: 'failed'; id: number; error: SerializedError }
  /** One JSON line of the thread's logger (kafkajs's own lines), for the main logger to write. */
  | { type: 'log'; line: string };

/** An error as it crosses the thread boundary: what callers look at (code, retriable, hint), and its chain for logs. */
export interface SerializedError {
  name: string;
  message: string;
  stack?: string;
  code?: ErrorCode;
  retriable?: boolean;
  hint?: string;
  details?: Record<string, unknown>;
  cause?: SerializedError;
}

/** Causes kept across the boundary: enough for a log line, bounded against a cyclic chain. */
const MAX_CAUSES = 5;

export function serializeError(error: unknown, depth = 0): SerializedError {
  if (!(error instanceof Error)) return { name: 'Error', message: String(error) };
  const cause =
    error.cause !== undefined && depth < MAX_CAUSES ? serializeError(error.cause, depth + 1) : undefined;
  const common = {
    name: error.name,
    message: error.message,
    ...(error.stack === undefined ? {} : { stack: error.stack }),
    ...(cause === undefined ? {} : { cause }),
  };
  if (error instanceof WalpurgeError)
    return {
      ...common,
      code: error.code,
      retriable: error.retriable,
      ...(error.hint === undefined ? {} : { hint: error.hint }),
      ...(error.details === undefined ? {} : { details: safeDetails(error.details) }),
    };
  const retriable = (error as { retriable?: unknown }).retriable;
  return { ...common, ...(typeof retriable === 'boolean' ? { retriable } : {}) };
}

/** The error again on the main thread: a WalpurgeError keeps its code, retriability and hint. */
export function deserializeError(serialized: SerializedError): Error {
  const cause = serialized.cause === undefined ? undefined : deserializeError(serialized.cause);
  const error =
    serialized.code !== undefined
      ? new WalpurgeError(serialized.code, serialized.message, {
          retriable: serialized.retriable ?? false,
          ...(serialized.hint === undefined ? {} : { hint: serialized.hint }),
          ...(serialized.details === undefined ? {} : { details: serialized.details }),
          ...(cause === undefined ? {} : { cause }),
        })
      : new Error(serialized.message, cause === undefined ? undefined : { cause });
  error.name = serialized.name;
  if (serialized.stack !== undefined) error.stack = serialized.stack;
  if (serialized.code === undefined && serialized.retriable !== undefined)
    Object.defineProperty(error, 'retriable', { value: serialized.retriable, enumerable: false });
  return error;
}

/** Details are for logs: keep what survives a structured clone, as JSON. */
function safeDetails(details: Record<string, unknown>): Record<string, unknown> | undefined {
  try {
    return JSON.parse(JSON.stringify(details)) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}
