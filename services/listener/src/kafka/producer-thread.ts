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

const PINO_LEVELS: Record<number, 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal'> = {
  10: 'trace',
  20: 'debug',
  30: 'info',
  40: 'warn',
  50: 'error',
  60: 'fatal',
};

/**
 * A kafkajs producer in a worker thread. The main thread keeps the sink's queue, batching and
 * failure rules; the thread does the work per record (batch encoding, CRCs, partitioning, the
 * socket). A thread that dies fails every request in flight (retriable: the listener replays from
 * its durable LSN with a fresh producer) and refuses every later one.
 */
export class ThreadProducer implements SinkProducer {
  private readonly worker: Worker;
  private readonly waiting = new Map<number, { resolve(): void; reject(error: unknown): void }>();
  private nextId = 1;
  private stopped: Error | undefined;

  constructor(
    config: KafkaConfig,
    private readonly logger: Logger,
  ) {
    const data: ProducerThreadData = { config, logLevel: logger.level };
    this.worker = startWorker(data);
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
   * before the listener replays, so a thread that does not answer is terminated after a while.
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
  }

  private request(message: ToProducerThread, transfer: ArrayBuffer[] = []): Promise<void> {
    if (this.stopped !== undefined) return Promise.reject(this.threadError(this.stopped));
    return new Promise<void>((resolve, reject) => {
      this.waiting.set(message.id, { resolve, reject });
      if (this.waiting.size === 1) this.worker.ref();
      this.worker.postMessage(message, transfer);
    });
  }

  private onMessage(message: FromProducerThread): void {
    if (message.type === 'log') {
      this.relayLog(message.line);
      return;
    }
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
    const method = PINO_LEVELS[typeof level === 'number' ? level : 30] ?? 'info';
    this.logger[method](fields, typeof msg === 'string' ? msg : '');
  }

  private stop(reason: Error): void {
    if (this.stopped !== undefined) return;
    this.stopped = reason;
    const error = this.threadError(reason);
    this.logger.error({ err: error }, 'the Kafka producer thread stopped');
    for (const waiter of this.waiting.values()) waiter.reject(error);
    this.waiting.clear();
  }

  private threadError(reason: Error): WalpurgeError {
    return new WalpurgeError(
      ErrorCode.KafkaUnavailable,
      `the Kafka producer thread stopped: ${errorMessage(reason)}`,
      { retriable: true, cause: reason },
    );
  }
}

/**
 * The compiled thread entry next to this file; run from TypeScript sources (tests, `tsx`), the same
 * entry as .ts, loaded through tsx in the thread (a thread does not inherit the main thread's loader).
 */
function startWorker(data: ProducerThreadData): Worker {
  const here = import.meta.url;
  if (!here.endsWith('.ts')) return new Worker(new URL('./producer-worker.js', here), { workerData: data });
  const tsxApi = createRequire(here)
    .resolve('tsx/esm/api')
    .replace(/\.cjs$/, '.mjs');
  const entry = new URL('./producer-worker.ts', here).href;
  const shim = `import(${JSON.stringify(pathToFileURL(tsxApi).href)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(entry)}); })`;
  return new Worker(shim, { eval: true, workerData: data, execArgv: ['--conditions=@walpurge/source'] });
}
