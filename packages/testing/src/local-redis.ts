import { join } from 'node:path';
import { findExecutable } from './executables.js';
import { defaultLog, prefixed, type LogFn } from './log.js';
import { freePort } from './ports.js';
import { indent, spawnManaged } from './processes.js';
import { makeTempDir } from './temp-dirs.js';
import { waitForRedis } from './readiness.js';
import { describeError } from './wait-for.js';

export interface LocalRedisOptions {
  port?: number;
  /**
   * Keep data like a queue backend must (BullMQ): append-only file on, never evict. Default is a
   * pure cache: no RDB snapshots, no AOF.
   */
  persistent?: boolean;
  log?: LogFn;
  startTimeoutMs?: number;
  /**
   * Also serve TLS on a port of its own (`tlsUrl`), with these PEM files; `authClients` demands a
   * client certificate signed by `caFile`. The plain port stays open for readiness checks.
   */
  tls?: { certFile: string; keyFile: string; caFile: string; authClients?: boolean };
}

export interface LocalRedis {
  url: string;
  port: number;
  /** rediss:// URL of the TLS port, when started with `tls`. */
  tlsUrl?: string;
  logFile: string;
  stop(): Promise<void>;
}

export async function startLocalRedis(opts: LocalRedisOptions = {}): Promise<LocalRedis> {
  const log = prefixed(opts.log ?? defaultLog);
  const binary = findExecutable('redis-server', ['/usr/bin', '/usr/local/bin', '/opt/homebrew/bin']);
  if (!binary) {
    throw new Error(
      'redis-server not found on PATH; install it (apt-get install redis-server) or set WALPURGE_TEST_REDIS_URL',
    );
  }
  for (let attempt = 1; ; attempt++) {
    const port = opts.port ?? (await freePort());
    try {
      return await startOnce(binary, port, opts, log);
    } catch (err) {
      if (opts.port === undefined && attempt < 3 && /already in use/i.test(describeError(err))) continue;
      throw err;
    }
  }
}

async function startOnce(
  binary: string,
  port: number,
  opts: LocalRedisOptions,
  log: LogFn,
): Promise<LocalRedis> {
  const dir = makeTempDir('redis');
  const logFile = join(dir.path, 'redis.log');
  const durability = opts.persistent
    ? ['--appendonly', 'yes', '--appendfsync', 'everysec']
    : ['--appendonly', 'no'];
  const tlsPort = opts.tls ? await freePort() : undefined;
  const tls =
    opts.tls && tlsPort !== undefined
      ? [
          '--tls-port',
          String(tlsPort),
          '--tls-cert-file',
          opts.tls.certFile,
          '--tls-key-file',
          opts.tls.keyFile,
          '--tls-ca-cert-file',
          opts.tls.caFile,
          '--tls-auth-clients',
          opts.tls.authClients ? 'yes' : 'no',
        ]
      : [];
  // One option and its value per line.
  // prettier-ignore
  const args = [
    '--port',
    String(port),
    ...tls,
    '--bind',
    '127.0.0.1',
    '--dir',
    dir.path,
    '--save',
    '',
    ...durability,
    // Explicit although it is Redis' default: BullMQ refuses to trust any other policy.
    '--maxmemory-policy',
    'noeviction',
    '--daemonize',
    'no',
    '--logfile',
    '',
  ];
  const proc = spawnManaged('redis-server', binary, args, { cwd: dir.path, logFile, stopTimeoutMs: 5_000 });
  try {
    await waitForRedis('127.0.0.1', port, opts.startTimeoutMs ?? 30_000, () => proc.exitStatus);
  } catch (err) {
    await proc.stop();
    const message = `local Redis did not become ready: ${describeError(err)}\n${indent(proc.logTail())}`;
    await dir.remove();
    throw new Error(message, { cause: err });
  }
  if (opts.persistent) log(`redis: persistent mode (appendonly yes, noeviction) in ${dir.path}`);

  let stopped: Promise<void> | undefined;
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    ...(tlsPort !== undefined ? { tlsUrl: `rediss://127.0.0.1:${tlsPort}` } : {}),
    logFile,
    stop: () =>
      (stopped ??= (async () => {
        await proc.stop();
        await dir.remove();
      })()),
  };
}
