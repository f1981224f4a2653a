import { spawn } from 'node:child_process';
import { Redis } from 'ioredis';
import { waitFor } from '@walpurge/testing';

/** Where a stopped Redis kept its data, so the same server can come back with it. */
export interface StoppedRedis {
  port: number;
  dir: string;
}

/** A Redis brought back by `restartRedis`; `stop()` kills it (its data dir stays with its owner). */
export interface RestartedRedis {
  url: string;
  stop(): Promise<void>;
}

/**
 * Takes a persistent (AOF) Redis down the way a crash or deploy would, while keeping its data:
 * SHUTDOWN flushes the append-only file and exits, clients then get "connection refused". The
 * LocalRedis handle still owns (and later removes) the data directory.
 */
export async function shutdownRedis(url: string): Promise<StoppedRedis> {
  const admin = new Redis(url, { maxRetriesPerRequest: 0, retryStrategy: () => null, lazyConnect: true });
  admin.on('error', () => undefined);
  await admin.connect();
  const reply = (await admin.config('GET', 'dir')) as string[];
  const dir = reply[1];
  if (!dir) throw new Error(`CONFIG GET dir returned ${JSON.stringify(reply)}`);
  const port = Number(new URL(url).port);
  // The server closes the connection instead of replying.
  await admin.call('SHUTDOWN').catch(() => undefined);
  admin.disconnect();
  await waitFor('Redis to refuse connections', async () => !(await answersPing(port)), {
    timeoutMs: 15_000,
    intervalMs: 50,
  });
  return { port, dir };
}

/** Starts redis-server again on the same port and data directory (it replays the AOF). */
export async function restartRedis(stopped: StoppedRedis): Promise<RestartedRedis> {
  // Same settings as startLocalRedis({ persistent: true }). One option and its value per line.
  // prettier-ignore
  const args = [
    '--port', String(stopped.port),
    '--bind', '127.0.0.1',
    '--dir', stopped.dir,
    '--save', '',
    '--appendonly', 'yes',
    '--appendfsync', 'everysec',
    '--maxmemory-policy', 'noeviction',
    '--daemonize', 'no',
  ];
  const child = spawn('redis-server', args, { stdio: 'ignore' });
  const exited = new Promise<void>((done) => child.once('exit', () => done()));
  await waitFor('restarted Redis to answer', () => answersPing(stopped.port), {
    timeoutMs: 30_000,
    intervalMs: 50,
  });
  return {
    url: `redis://127.0.0.1:${stopped.port}`,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGKILL');
      await exited;
    },
  };
}

async function answersPing(port: number): Promise<boolean> {
  const probe = new Redis({
    port,
    host: '127.0.0.1',
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    connectTimeout: 1_000,
  });
  probe.on('error', () => undefined);
  try {
    await probe.connect();
    return (await probe.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    probe.disconnect();
  }
}

/**
 * Freezes the Redis process (SIGSTOP): connections stay open but nothing answers, as in a network
 * partition, the case where closing a socket politely waits forever. `resume()` thaws it.
 */
export async function pauseRedis(url: string): Promise<{ resume(): void }> {
  const admin = new Redis(url, { maxRetriesPerRequest: 0, retryStrategy: () => null, lazyConnect: true });
  admin.on('error', () => undefined);
  await admin.connect();
  const info = await admin.info('server');
  admin.disconnect();
  const pid = Number(/^process_id:(\d+)/m.exec(info)?.[1]);
  if (!Number.isInteger(pid) || pid <= 0) throw new Error(`no process_id in INFO server:\n${info}`);
  process.kill(pid, 'SIGSTOP');
  let paused = true;
  return {
    resume() {
      if (paused) process.kill(pid, 'SIGCONT');
      paused = false;
    },
  };
}
