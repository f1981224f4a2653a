import os from 'node:os';
import { Kafka, logLevel } from 'kafkajs';

/** A positive number from the environment (benchmark parameter), or the default. */
export function envNumber(name: string, fallback: number): number {
  return envBounded(name, fallback, (value) => value > 0, 'a positive number');
}

/** A number ≥ 0 from the environment (a benchmark parameter where 0 means "off"), or the default. */
export function envNonNegative(name: string, fallback: number): number {
  return envBounded(name, fallback, (value) => value >= 0, 'a number ≥ 0');
}

function envBounded(
  name: string,
  fallback: number,
  accept: (value: number) => boolean,
  what: string,
): number {
  const text = process.env[name];
  if (text === undefined || text === '') return fallback;
  const value = Number(text);
  if (!Number.isFinite(value) || !accept(value)) throw new Error(`${name} must be ${what}, got '${text}'`);
  return value;
}

/** Nearest-rank percentile of an ascending array. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] as number;
}

export interface Distribution {
  count: number;
  p50: number;
  p99: number;
  max: number;
}

export function distribution(values: readonly number[]): Distribution {
  const sorted = [...values].sort((a, b) => a - b);
  return {
    count: sorted.length,
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    max: sorted.at(-1) ?? NaN,
  };
}

export function formatMs(ms: number): string {
  return ms < 10 ? ms.toFixed(1) : ms.toFixed(0);
}

export function describeDistribution(d: Distribution, unit = 'ms'): string {
  return `p50 ${formatMs(d.p50)} ${unit}, p99 ${formatMs(d.p99)} ${unit}, max ${formatMs(d.max)} ${unit} (n=${d.count})`;
}

export function machineLine(): string {
  const cpu = os.cpus();
  return `machine: ${cpu[0]?.model ?? 'unknown cpu'} × ${cpu.length} cores, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB RAM, ${os.platform()} ${os.release()}, node ${process.version}`;
}

/**
 * Peak resident memory of this benchmark process so far (the roles it runs in-process, its writer
 * and its bookkeeping together: an upper bound for the roles), for benchmarks that run in-process.
 */
export function peakRssLine(): string {
  const peakMiB = process.resourceUsage().maxRSS / 1024;
  return `peak RSS of this process: ${peakMiB.toFixed(0)} MiB (roles, writer and benchmark bookkeeping together)`;
}

/** The 1, 5 and 15 minute load averages, e.g. "1.81 4.02 8.20". */
export function loadAverages(): string {
  return os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');
}

/** The machine is shared: every figure is printed with the load it was measured under. */
export function loadLine(label: string): string {
  return `load average ${label}: ${loadAverages()} (1/5/15 min, ${os.cpus().length} cores)`;
}

export function rate(count: number, seconds: number): string {
  return Math.round(count / seconds).toLocaleString('en-US');
}

/** Benchmarks create uniquely named topics on a possibly shared broker: remove them afterwards. */
export async function deleteTopics(brokers: string[], topics: string[]): Promise<void> {
  const admin = new Kafka({ brokers, logLevel: logLevel.NOTHING }).admin();
  try {
    await admin.connect();
    await admin.deleteTopics({ topics });
  } catch {
    // Best effort: a leftover topic costs disk, not correctness.
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Runs `tick` on a fixed schedule (catching up after a slow tick rather than drifting). */
export async function paced(
  count: number,
  intervalMs: number,
  tick: (i: number) => Promise<void>,
): Promise<number> {
  const started = performance.now();
  for (let i = 0; i < count; i += 1) {
    const wait = started + i * intervalMs - performance.now();
    if (wait > 0) await sleep(wait);
    await tick(i);
  }
  return (performance.now() - started) / 1000;
}

/** CPU seconds (user + system) this process spent since `since` (process.cpuUsage()), all threads. */
export function cpuSecondsSince(since: NodeJS.CpuUsage): number {
  const used = process.cpuUsage(since);
  return (used.user + used.system) / 1e6;
}

/** BENCH_KAFKA_CLIENT: kafkajs (default) or platformatic, the listener's kafka.producerClient. */
export function kafkaClientFromEnv(): 'kafkajs' | 'platformatic' {
  const client = process.env['BENCH_KAFKA_CLIENT'] ?? 'kafkajs';
  if (client !== 'kafkajs' && client !== 'platformatic')
    throw new Error(`BENCH_KAFKA_CLIENT must be kafkajs or platformatic, not '${client}'`);
  return client;
}
