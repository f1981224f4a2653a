import { readFileSync } from 'node:fs';
import type { Role } from 'walpurge';
import { sampleMetrics, type MetricPeaks } from './metrics-sampler.js';
import { readProcessUsage, type ProcessUsage } from './process-usage.js';
import { loadAverages } from './report.js';
import { startWalpurge } from './walpurge-process.js';

/** One compiled `walpurge run --role <role>` process, from its start to the end of its work. */
export interface RoleRun {
  /** Changes in the measured window (first change seen → all of them). */
  changes: number;
  /** The window, and from the process's start to the end of its work. */
  windowSeconds: number;
  totalSeconds: number;
  /** When the first change was seen: RSS then (start-up done, work beginning). */
  atFirst: ProcessUsage | undefined;
  /** When the last change was seen: VmHWM then covers the whole run. */
  atLast: ProcessUsage | undefined;
  /** Peaks of the heap and of the pending bytes, scraped from its /metrics. */
  peaks: MetricPeaks;
  /** Warning and error lines in the process's log (a reconnect, an oversized record). */
  logProblems: number;
  loadBefore: string;
  loadAfter: string;
  error?: string;
}

/** What a watcher reports: the changes its window measured and when it opened and closed (performance.now()). */
export interface Watched {
  changes: number;
  startedAt: number;
  endedAt: number;
}

/**
 * Starts the role, lets `watch` follow its work (it calls onFirst/onLast at the first and last change,
 * where /proc is read), and stops it. A failure is returned, not thrown, so that one run that stalls
 * keeps the other runs' figures.
 */
export async function runRole(
  role: Role,
  configFile: string,
  logFile: string,
  /** The process's http.port: its /metrics is scraped while it works. */
  metricsPort: number,
  watch: (hooks: { alive: () => boolean; onFirst: () => void; onLast: () => void }) => Promise<Watched>,
): Promise<RoleRun> {
  const loadBefore = loadAverages();
  const startedAt = performance.now();
  const running = startWalpurge(role, configFile, logFile);
  const sampler = sampleMetrics(metricsPort);
  let atFirst: ProcessUsage | undefined;
  let atLast: ProcessUsage | undefined;
  let watched: Watched | undefined;
  let error: string | undefined;
  let metricPeaks: MetricPeaks | undefined;
  try {
    watched = await watch({
      alive: () => running.alive(),
      onFirst: () => (atFirst = readProcessUsage(running.pid)),
      onLast: () => (atLast = readProcessUsage(running.pid)),
    });
  } catch (caught) {
    error = caught instanceof Error ? caught.message : String(caught);
    atLast = readProcessUsage(running.pid) ?? atLast;
  } finally {
    const peaks = await sampler.stop();
    await running.stop();
    metricPeaks = peaks;
  }
  return {
    changes: watched?.changes ?? NaN,
    windowSeconds: watched ? (watched.endedAt - watched.startedAt) / 1000 : NaN,
    totalSeconds: watched ? (watched.endedAt - startedAt) / 1000 : NaN,
    atFirst,
    atLast,
    peaks: metricPeaks,
    logProblems: readFileSync(logFile, 'utf8')
      .split('\n')
      .filter((line) => /"level":(40|50|60)\b/.test(line)).length,
    loadBefore,
    loadAfter: loadAverages(),
    ...(error === undefined ? {} : { error }),
  };
}
