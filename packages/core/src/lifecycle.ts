import { ErrorCode, WalpurgeError, errorMessage } from './errors.js';

/**
 * A long-running component. `start` resolves once the component is ready to do its job (connected,
 * subscribed); `stop` drains in-flight work, acknowledges what is done and nothing more, and must be
 * idempotent because both a signal and a failure can trigger it.
 */
export interface Service {
  readonly name: string;
  start(signal: AbortSignal): Promise<void>;
  stop(): Promise<void>;
  /** Readiness beyond "started": e.g. slot streaming, consumer joined. Defaults to true once started. */
  isReady?(): boolean;
}

export interface ServiceGroupLogger {
  info(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/**
 * Starts services in order and stops them in reverse, so that a consumer is stopped before the
 * producer it depends on and nothing is acknowledged after its downstream went away.
 */
export class ServiceGroup {
  private readonly started: Service[] = [];
  private readonly abort = new AbortController();
  private stopping: Promise<void> | undefined;

  constructor(
    private readonly services: readonly Service[],
    private readonly log?: ServiceGroupLogger,
  ) {}

  get signal(): AbortSignal {
    return this.abort.signal;
  }

  async start(): Promise<void> {
    for (const service of this.services) {
      if (this.abort.signal.aborted) throw new WalpurgeError(ErrorCode.Aborted, 'start-up aborted');
      const began = Date.now();
      try {
        await service.start(this.abort.signal);
      } catch (error) {
        this.log?.error({ service: service.name, err: error }, `failed to start ${service.name}`);
        await this.stop();
        throw error;
      }
      this.started.push(service);
      this.log?.info({ service: service.name, ms: Date.now() - began }, `${service.name} started`);
    }
  }

  isReady(): boolean {
    return (
      this.started.length === this.services.length &&
      !this.abort.signal.aborted &&
      this.started.every((s) => (s.isReady ? s.isReady() : true))
    );
  }

  /** Idempotent: concurrent callers share one shutdown. */
  stop(): Promise<void> {
    this.stopping ??= this.stopAll();
    return this.stopping;
  }

  private async stopAll(): Promise<void> {
    this.abort.abort();
    const errors: unknown[] = [];
    for (const service of [...this.started].reverse()) {
      try {
        await service.stop();
        this.log?.info({ service: service.name }, `${service.name} stopped`);
      } catch (error) {
        errors.push(error);
        this.log?.error({ service: service.name, err: error }, `failed to stop ${service.name}`);
      }
    }
    if (errors.length > 0) {
      throw new WalpurgeError(ErrorCode.Internal, `stopping failed: ${errors.map(errorMessage).join('; ')}`, {
        cause: errors[0],
      });
    }
  }
}
