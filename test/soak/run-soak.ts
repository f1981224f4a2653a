import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WalpurgeConfig } from '@walpurge/config';
import { createIsolatedDatabase, uniqueName, waitFor, withPgClient } from '@walpurge/testing';
import { FULL_SCHEDULE, injectFault, SHORT_SCHEDULE, type FaultRecord, type FaultStep } from './faults.js';
import type { InspectReport } from '@walpurge/inspector';
import { fetchInspectReport, scrapeGauge } from './inspect-report.js';
import { buildReport, failedChecks, formatReport, writeReport, type SoakReport } from './report.js';
import { startRoles, type RoleSet } from './roles.js';
import { startSoakServices, type SoakServices } from './services.js';
import { SCHEMA_SQL, SDK_KEY, soakConfig } from './soak-config.js';
import { seedRows, startWorkload, type Workload } from './workload.js';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
export const DEFAULT_REPORT_FILE = join(repoRoot, 'test-results/soak-report.json');

export interface SoakOptions {
  mode: 'full' | 'short';
  /** Stop once the observer checked this many changes… */
  changes: number;
  /** …or after this long of workload, whichever comes first. */
  durationMs: number;
  broken: boolean;
  /** Run the observer (role inspector) and read its report; off: the harness alone. */
  observer: boolean;
  /** Services to use (and leave running); without it the soak starts and stops its own. */
  services?: SoakServices;
  reportFile?: string;
  log?: (line: string) => void;
}

interface Profile {
  timescalesMs: number[];
  /** The timescale whose SDK figure decides the run (one of timescalesMs). */
  judgedTimescale: string;
  /** Confirmed inconsistencies the observer's report keeps: the plain key space alone makes many. */
  reportedInconsistencies: number;
  schedule: readonly FaultStep[];
  /** Between two faults, ms. */
  faultIntervalMs: number;
  freezeMs: number;
  rows: number;
  readers: number;
  writers: number;
  writePauseMs: number;
  progressMs: number;
}

const PROFILES: Record<SoakOptions['mode'], Profile> = {
  full: {
    timescalesMs: [1_000, 10_000, 60_000],
    judgedTimescale: '10s',
    reportedInconsistencies: 20_000,
    schedule: FULL_SCHEDULE,
    faultIntervalMs: 20_000,
    freezeMs: 3_000,
    rows: 2_000,
    readers: 8,
    writers: 4,
    writePauseMs: 2,
    progressMs: 10_000,
  },
  short: {
    // 10 s is reported; 30 s is judged: a kill -9 costs a 6 s session timeout, a rebalance and the
    // catch-up, which a loaded 2-core CI machine can stretch past 10 s.
    timescalesMs: [1_000, 10_000, 30_000],
    judgedTimescale: '30s',
    reportedInconsistencies: 1_000,
    schedule: SHORT_SCHEDULE,
    faultIntervalMs: 5_000,
    freezeMs: 2_000,
    rows: 300,
    readers: 4,
    writers: 2,
    writePauseMs: 5,
    progressMs: 10_000,
  },
};

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The chaos soak: its own services, every role as its own process, the application workload, faults
 * on a schedule, and at the end the observer's verdict with the soak's own figures beside it.
 */
export async function runSoak(options: SoakOptions): Promise<SoakReport> {
  const log = options.log ?? ((line: string) => console.info(line));
  const profile = PROFILES[options.mode];
  const name = uniqueName(options.broken ? 'soak_broken' : 'soak');
  const prefix = `${name}:`;
  const logDir = join(repoRoot, 'test-results/soak', name);
  mkdirSync(logDir, { recursive: true });
  log(`soak ${name}: ${options.mode}${options.broken ? ', broken' : ''}; role logs in ${logDir}`);

  const services = options.services ?? (await startSoakServices(log));
  const cleanups: Array<() => Promise<unknown>> = [];
  if (!options.services) cleanups.push(() => services.stop());
  try {
    const database = await createIsolatedDatabase(services.databaseUrl, 'soak');
    cleanups.unshift(() => database.drop());
    await withPgClient(database.url, (client) => client.query(SCHEMA_SQL));
    await seedRows(database.url, profile.rows);

    const configOptions = {
      databaseUrl: database.url,
      timescalesMs: profile.timescalesMs,
      reportedInconsistencies: profile.reportedInconsistencies,
    };
    const main = withoutObserver(soakConfig(services, { name, prefix }, configOptions), options.observer);
    const invalidator = options.broken
      ? withoutObserver(
          soakConfig(services, { name, prefix }, { ...configOptions, withoutKey: SDK_KEY }),
          options.observer,
        )
      : main;
    const roles = await startRoles(logDir, { main, invalidator }, { inspector: options.observer, log });
    cleanups.unshift(() => roles.stop());

    const startedAt = new Date();
    const workload = await startWorkload({
      databaseUrl: database.url,
      cacheRedisUrl: services.cacheRedisUrl,
      prefix,
      config: WalpurgeConfig.parse(main),
      rows: profile.rows,
      readers: profile.readers,
      writers: profile.writers,
      writePauseMs: profile.writePauseMs,
    });
    cleanups.unshift(() => workload.stop());

    const faults: FaultRecord[] = [];
    let running = true;
    const faultLoop = (async () => {
      // The broken mode proves the observer can fail; faults would only blur which failure it saw.
      if (options.broken) return;
      for (let step = 0; running; step++) {
        await sleep(profile.faultIntervalMs);
        if (!running) break;
        const next = profile.schedule[step % profile.schedule.length]!;
        const fault = await injectFault(next, { services, roles, freezeMs: profile.freezeMs, log });
        faults.push(fault);
        log(`fault ${fault.at} ${fault.kind} ${fault.target} (${fault.durationMs} ms): ${fault.detail}`);
        // The short run injects its schedule once.
        if (options.mode === 'short' && step + 1 >= profile.schedule.length) break;
      }
    })();

    const checkedSoFar = async (): Promise<InspectReport | undefined> =>
      roles.inspector ? fetchInspectReport(roles.inspector.port).catch(() => undefined) : undefined;
    let lastProgress = Date.now();
    while (Date.now() - startedAt.getTime() < options.durationMs) {
      await sleep(1_000);
      if (Date.now() - lastProgress < profile.progressMs) continue;
      lastProgress = Date.now();
      const observed = await checkedSoFar();
      log(progressLine(startedAt, workload, observed, faults.length));
      const checked =
        observed?.changesSampled ?? workload.counts.sqlCommits + workload.counts.writeBehindAccepted;
      if (checked >= options.changes) break;
    }
    // The short run injects its whole schedule even when a fault outlasts the duration (a slow
    // broker restart on a loaded machine): a schedule cut short would prove less than it says.
    if (options.mode === 'short') await faultLoop;
    running = false;
    await faultLoop;
    await workload.stop();
    cleanups.shift();
    log(`workload stopped: ${progressLine(startedAt, workload, undefined, faults.length)}`);

    const observer = roles.inspector ? await drainObserver(roles, profile.timescalesMs, log) : null;
    const report = buildReport({
      name,
      mode: options.mode,
      broken: options.broken,
      startedAt: startedAt.toISOString(),
      endedAt: new Date().toISOString(),
      workload: workload.counts,
      restarts: Object.fromEntries(roles.all.map((role) => [role.id, role.restarts])),
      faults,
      observer,
      judgedTimescale: profile.judgedTimescale,
    });
    writeReport(options.reportFile ?? DEFAULT_REPORT_FILE, report);
    log(formatReport(report));
    return report;
  } finally {
    for (const cleanup of cleanups)
      await cleanup().catch((error: unknown) => log(`cleanup: ${String(error)}`));
  }
}

/** The harness without the observer: the `inspect` section would start nothing and is left out. */
function withoutObserver(config: Record<string, unknown>, observer: boolean): Record<string, unknown> {
  if (observer) return config;
  const { inspect: _inspect, ...rest } = config;
  return rest;
}

/**
 * After the last change, its checks are due one longest timescale later; then the observer's queue
 * of scheduled checks must run empty before its report is final.
 */
async function drainObserver(
  roles: RoleSet,
  timescalesMs: readonly number[],
  log: (line: string) => void,
): Promise<InspectReport> {
  const inspector = roles.inspector!;
  const longest = Math.max(...timescalesMs);
  log(`waiting ${longest / 1000} s (the longest timescale) and for the observer's pending checks`);
  await sleep(longest + 2_000);
  await waitFor(
    "the observer's pending checks to run",
    async () => (await scrapeGauge(inspector.port, 'walpurge_inspect_pending_checks')) === 0,
    { timeoutMs: longest + 120_000, intervalMs: 1_000 },
  );
  return fetchInspectReport(inspector.port);
}

function progressLine(
  startedAt: Date,
  workload: Workload,
  observed: InspectReport | undefined,
  faults: number,
): string {
  const { counts } = workload;
  const elapsed = Math.round((Date.now() - startedAt.getTime()) / 1000);
  // Inconsistent checks per writer at each timescale, e.g. "sdk 1s/10s/60s 12/0/0".
  const perTimescale = (report: InspectReport, writer: 'sdk' | 'other'): string => {
    const rows = report.checks.filter((row) => row.writer === writer);
    return `${writer} ${rows.map((row) => row.timescale).join('/')} ${rows.map((row) => row.inconsistent).join('/')}`;
  };
  const observer = observed
    ? ` | observer: ${observed.changesSeen} seen, ${observed.changesSampled} sampled; inconsistent ` +
      `${perTimescale(observed, 'sdk')}, ${perTimescale(observed, 'other')}; failed checks ${failedChecks(observed)}`
    : '';
  return (
    `[${elapsed}s] commits: ${counts.sqlCommits} SQL, ${counts.writeBehindAccepted} writeBehind; reads: ` +
    `${counts.sdkReads} SDK, ${counts.plainReads} plain; failed ops ${Object.values(counts.errors).reduce((a, b) => a + b, 0)}; ` +
    `faults ${faults}${observer}`
  );
}
