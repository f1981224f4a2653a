import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { Message } from 'kafkajs';
import type { KafkaConfig } from '@walpurge/config';
import { ErrorCode, WalpurgeError, errorMessage, type Logger } from '@walpurge/core';
import {
  deserializeError,
  packRecords,
  type FromProducerThread,
  type ProducerThreadData,
  type ToProducerThread,
} from './producer-thread-messages.js';

/** What the Kafka sink needs of a producer: kafkajs's in-process one, or this thread's proxy. */
export interface SinkProducer {
  connect(): Promise<void>;
  send(request: { topic: string; acks: -1; messages: Message[] }): Promise<unknown>;
  disconnect(): Promise<void>;
}

const DISCONNECT_TIMEOUT_MS = 5_000;
/** The export condition under which the workspace packages resolve to their TypeScript sources. */
const SOURCE_CONDITION = '@walpurge/source';

const PINO_LEVELS: Record<number, 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal'> = {
  10: 'trace',
  20: 'debug',
  30: 'info',
  40: 'warn',
  50: 'error',
  60: 'fatal',
};

/** What the thread needs besides the config, decided by the main thread. */
export interface ThreadProducerOptions {
  /** kafkajs `ssl` as the main thread read it (the PEM files are read once per process start). */
  tls: ProducerThreadData['tls'];
  /** The process has connected with these settings before (see createKafka's connectedBefore). */
  connectedBefore: boolean;
}

/**
 * A kafkajs producer in a worker thread. The main thread keeps the sink's queue, batching and
 * failure rules; the thread does the work per record (batch encoding, CRCs, partitioning, the
 * socket). A thread that dies fails every request in flight (retriable: the listener replays from
 * its durable LSN with a fresh producer) and refuses every later one. A thread that cannot even
 * start (a missing file, a loader error) is not an outage: that failure is not retriable.
 */
export class ThreadProducer implements SinkProducer {
  private readonly worker: Worker;
  private readonly waiting = new Map<number, { resolve(): void; reject(error: unknown): void }>();
  private nextId = 1;
  private stopped: Error | undefined;
  /** The thread has answered a request: it started. */
  private answered = false;

  constructor(
    config: KafkaConfig,
    private readonly logger: Logger,
    options: ThreadProducerOptions,
  ) {
    const data: ProducerThreadData = {
      config,
      logLevel: logger.level,
      tls: options.tls,
      connectedBefore: options.connectedBefore,
    };
    try {
      this.worker = startWorker(data);
    } catch (error) {
      throw startFailure(error);
    }
    // Idle, the thread must not keep the process alive; a request in flight does (see request()).
    this.worker.unref();
    this.worker.on('message', (message: FromProducerThread) => this.onMessage(message));
    this.worker.on('error', (error) => this.stop(error));
    this.worker.on('exit', (code) => this.stop(new Error(`exited with code ${code}`)));
  }

  connect(): Promise<void> {
    return this.request({ type: 'connect', id: this.nextId++ });
  }

  send(request: { topic: string; acks: -1; messages: Message[] }): Promise<void> {
    const { records, transfer } = packRecords(request.messages);
    return this.request({ type: 'send', id: this.nextId++, topic: request.topic, records }, transfer);
  }

  /**
   * A polite disconnect (the producer closes its connections), bounded: a failed send waits for this
   * before the listener replays, so a thread that does not answer is terminated after a while. A
   * request still in flight then fails (retriable), as when the thread dies.
   */
  async disconnect(): Promise<void> {
    if (this.stopped === undefined) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        this.request({ type: 'disconnect', id: this.nextId++ }).catch(() => {}),
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, DISCONNECT_TIMEOUT_MS);
        }),
      ]);
      clearTimeout(timer);
    }
    this.stopped ??= new Error('disconnected');
    await this.worker.terminate();
    this.failWaiting(this.threadError(this.stopped));
  }

  private request(message: ToProducerThread, transfer: ArrayBuffer[] = []): Promise<void> {
    if (this.stopped !== undefined) return Promise.reject(this.threadError(this.stopped));
    return new Promise<void>((resolve, reject) => {
      try {
        this.worker.postMessage(message, transfer);
      } catch (error) {
        reject(error);
        return;
      }
      this.waiting.set(message.id, { resolve, reject });
      if (this.waiting.size === 1) this.worker.ref();
    });
  }

  private onMessage(message: FromProducerThread): void {
    if (message.type === 'log') {
      this.relayLog(message.line);
      return;
    }
    this.answered = true;
    const waiter = this.waiting.get(message.id);
    if (waiter === undefined) return;
    this.waiting.delete(message.id);
    if (this.waiting.size === 0) this.worker.unref();
    if (message.type === 'done') waiter.resolve();
    else waiter.reject(deserializeError(message.error));
  }

  /** A line of the thread's logger, written again by this one (its bindings, its destination). */
  private relayLog(line: string): void {
    let entry: Record<string, unknown>;
    try {
      entry = JSON.parse(line) as Record<string, unknown>;
    } catch {
      return;
    }
    const { level, msg, time: _time, pid: _pid, hostname: _hostname, name: _name, ...fields } = entry;
    // pino wrote the thread's error as a plain object: an Error again, so this logger writes it as one.
    if (fields['err'] !== null && typeof fields['err'] === 'object')
      fields['err'] = revivedError(fields['err']);
    const method = PINO_LEVELS[typeof level === 'number' ? level : 30] ?? 'info';
    this.logger[method](fields, typeof msg === 'string' ? msg : '');
  }

  private stop(reason: Error): void {
    if (this.stopped !== undefined) return;
    this.stopped = reason;
    const error = this.answered ? this.threadError(reason) : startFailure(reason);
    this.logger.error({ err: error }, 'the Kafka producer thread stopped');
    this.failWaiting(error);
  }

  private failWaiting(error: Error): void {
    for (const waiter of this.waiting.values()) waiter.reject(error);
    this.waiting.clear();
    this.worker.unref();
  }

  private threadError(reason: Error): WalpurgeError {
    return new WalpurgeError(
      ErrorCode.KafkaUnavailable,
      `the Kafka producer thread stopped: ${errorMessage(reason)}`,
      { retriable: true, cause: reason },
    );
  }
}

/** A thread that never answered: starting it again would fail again. */
function startFailure(reason: unknown): WalpurgeError {
  return new WalpurgeError(
    ErrorCode.Internal,
    `the Kafka producer thread could not start: ${errorMessage(reason)}`,
    {
      retriable: false,
      cause: reason,
      hint: 'set kafka.producerThread: false to run the producer on the main thread, and report this',
    },
  );
}

function revivedError(logged: object): Error {
  const { type, message, stack, ...rest } = logged as Record<string, unknown>;
  const error = Object.assign(new Error(typeof message === 'string' ? message : ''), rest);
  error.name = typeof type === 'string' ? type : 'Error';
  if (typeof stack === 'string') error.stack = stack;
  return error;
}

/**
 * The compiled thread entry next to this file; run from TypeScript sources (tests, `tsx`), the same
 * entry as .ts, loaded through tsx in the thread (a thread does not inherit the main thread's loader).
 */
function startWorker(data: ProducerThreadData): Worker {
  const here = import.meta.url;
  if (!here.endsWith('.ts'))
    return new Worker(new URL('./producer-worker.js', here), {
      workerData: data,
      // The compiled entry loads compiled packages: a source condition inherited from a test runner
      // (vitest passes its resolve conditions to node) would send it to TypeScript it cannot run.
      execArgv: withoutSourceCondition(process.execArgv),
    });
  const tsxApi = createRequire(here)
    .resolve('tsx/esm/api')
    .replace(/\.cjs$/, '.mjs');
  const entry = new URL('./producer-worker.ts', here).href;
  const shim = `import(${JSON.stringify(pathToFileURL(tsxApi).href)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(entry)}); })`;
  return new Worker(shim, { eval: true, workerData: data, execArgv: [`--conditions=${SOURCE_CONDITION}`] });
}

function withoutSourceCondition(args: readonly string[]): string[] {
  const kept: string[] = [];
  for (let i = 0; i < args.length; i += 1) {
    const arg = args[i] as string;
    if (arg === `--conditions=${SOURCE_CONDITION}` || arg === `-C=${SOURCE_CONDITION}`) continue;
    if ((arg === '--conditions' || arg === '-C') && args[i + 1] === SOURCE_CONDITION) {
      i += 1;
      continue;
    }
    kept.push(arg);
  }
  return kept;
}
