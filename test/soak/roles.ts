import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, spawnManaged, waitFor, WaitForAbortError, type ManagedProcess } from '@walpurge/testing';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const cliMain = join(repoRoot, 'packages/cli/src/main.ts');

export type RoleKind = 'listener' | 'invalidator' | 'flusher' | 'inspector';

/**
 * One `walpurge run --role KIND` process, exactly as deployed (from source). Its ops port stays
 * the same across restarts, so /readyz, /metrics and /inspect keep their address.
 */
export class RoleProcess {
  private process: ManagedProcess | undefined;
  restarts = 0;

  constructor(
    readonly id: string,
    readonly kind: RoleKind,
    readonly port: number,
    private readonly configFile: string,
    private readonly logFile: string,
  ) {}

  start(): void {
    this.process = spawnManaged(
      this.id,
      process.execPath,
      [
        '--conditions=@walpurge/source',
        '--import',
        'tsx',
        cliMain,
        'run',
        '--role',
        this.kind,
        '--config',
        this.configFile,
        '--http-port',
        String(this.port),
      ],
      { cwd: repoRoot, logFile: this.logFile, stopTimeoutMs: 15_000 },
    );
  }

  get alive(): boolean {
    return this.process !== undefined && this.process.exitStatus === undefined;
  }

  async readyz(): Promise<number | undefined> {
    try {
      return (await fetch(`http://127.0.0.1:${this.port}/readyz`, { signal: AbortSignal.timeout(2_000) }))
        .status;
    } catch {
      return undefined;
    }
  }

  /** Until its ops server answers (200, or 503 for a standby listener waiting for the slot). */
  async waitUp(ready: boolean, timeoutMs = 120_000): Promise<void> {
    await waitFor(
      `${this.id} ${ready ? 'ready' : 'up'}`,
      async () => {
        if (!this.alive)
          throw new WaitForAbortError(
            `${this.id} ${this.process?.exitStatus ?? 'not started'}:\n${this.process?.logTail() ?? ''}`,
          );
        const status = await this.readyz();
        return ready ? status === 200 : status !== undefined;
      },
      { timeoutMs, intervalMs: 200 },
    );
  }

  /** kill -9: no drain, no goodbye to Kafka's group or PostgreSQL's slot. */
  async kill9(): Promise<void> {
    const running = this.process;
    if (!running?.pid || !this.alive) return;
    process.kill(running.pid, 'SIGKILL');
    await running.exited;
  }

  async restart(): Promise<void> {
    await this.kill9();
    this.restarts += 1;
    this.start();
  }

  async stop(): Promise<void> {
    await this.process?.stop();
  }

  logTail(lines = 20): string {
    return this.process?.logTail(lines) ?? '';
  }
}

export interface RoleSet {
  readonly all: readonly RoleProcess[];
  readonly listeners: readonly RoleProcess[];
  readonly inspector: RoleProcess | undefined;
  /** The listener streaming the slot right now (ready), if any. */
  activeListener(): Promise<RoleProcess | undefined>;
  stop(): Promise<void>;
}

export interface RoleConfigs {
  /** What every role reads, the observer included. */
  main: Record<string, unknown>;
  /** The invalidators' own (broken mode: a rule's key left out). */
  invalidator: Record<string, unknown>;
}

/**
 * listener ×2 (active and standby on one slot), invalidator ×2 (one consumer group), flusher ×2
 * (one queue), and the observer. Started in dependency order; each must report ready (the standby
 * listener: up) before the workload begins.
 */
export async function startRoles(
  dir: string,
  configs: RoleConfigs,
  options: { inspector: boolean; log: (line: string) => void },
): Promise<RoleSet> {
  const mainFile = join(dir, 'walpurge.json');
  const invalidatorFile = join(dir, 'walpurge-invalidator.json');
  writeFileSync(mainFile, JSON.stringify(configs.main, null, 2));
  writeFileSync(invalidatorFile, JSON.stringify(configs.invalidator, null, 2));
  const make = async (id: string, kind: RoleKind): Promise<RoleProcess> =>
    new RoleProcess(
      id,
      kind,
      await freePort(),
      kind === 'invalidator' ? invalidatorFile : mainFile,
      join(dir, `${id}.log`),
    );
  const listeners = [await make('listener-a', 'listener'), await make('listener-b', 'listener')];
  const invalidators = [
    await make('invalidator-a', 'invalidator'),
    await make('invalidator-b', 'invalidator'),
  ];
  const flushers = [await make('flusher-a', 'flusher'), await make('flusher-b', 'flusher')];
  const inspector = options.inspector ? await make('inspector', 'inspector') : undefined;
  const all = [...invalidators, ...(inspector ? [inspector] : []), ...flushers, ...listeners];
  const stop = async (): Promise<void> => {
    await Promise.allSettled(all.map((role) => role.stop()));
  };
  try {
    const started = Date.now();
    // The invalidators first: they create the topics. Then the observer (its own group on the
    // change topic) and the flushers, then the first listener, so it is the active one; the second
    // then stands by.
    const startAll = async (group: readonly RoleProcess[]): Promise<void> => {
      for (const role of group) role.start();
      await Promise.all(group.map((role) => role.waitUp(true)));
    };
    await startAll(invalidators);
    await startAll([...(inspector ? [inspector] : []), ...flushers]);
    listeners[0]!.start();
    await listeners[0]!.waitUp(true);
    listeners[1]!.start();
    await listeners[1]!.waitUp(false);
    options.log(`roles up in ${Date.now() - started} ms: ${all.map((role) => role.id).join(', ')}`);
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    all,
    listeners,
    inspector,
    async activeListener() {
      for (const listener of listeners) if ((await listener.readyz()) === 200) return listener;
      return undefined;
    },
    stop,
  };
}
