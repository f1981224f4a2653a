import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { FaultRecord } from './faults.js';
import { renderReport, type InspectReport } from '@walpurge/inspector';
import { checksAt, durationMs } from './inspect-report.js';
import type { WorkloadCounts } from './workload.js';

export interface SoakReport {
  name: string;
  mode: 'full' | 'short';
  /** Purges of the SDK key switched off in the invalidators (the observer must see it). */
  broken: boolean;
  startedAt: string;
  endedAt: string;
  workload: WorkloadCounts;
  /** Role restarts after a crash, by role. */
  restarts: Record<string, number>;
  faults: FaultRecord[];
  /** The observer's own report; null when the run had no observer (e.g. it never came up). */
  observer: InspectReport | null;
  /** Confirmed stale SDK entries at the 10 s timescale (the issue's goal), always reported. */
  sdkInconsistentAt10s: number | null;
  sdkCheckedAt10s: number | null;
  /**
   * The timescale the run is judged at: 10 s for the full soak. The short run judges at 30 s: a
   * kill -9'd invalidator's partitions move after its session timeout (6 s), then a rebalance and
   * the catch-up, which a loaded 2-core machine can stretch past 10 s; its 10 s figure is printed.
   */
  judgedTimescale: string;
  sdkInconsistentJudged: number | null;
  sdkCheckedJudged: number | null;
  /**
   * SDK checks at the judged timescale that reached no verdict (unverifiable: among them checks
   * whose reads failed, and checks that started too late to judge, `checked-late`). Above
   * INCONCLUSIVE_SHARE of the checks, the run proves nothing: an observer that cannot read (or
   * reads too late) sees no inconsistency either.
   */
  sdkUnverifiableJudged: number | null;
  /** Checks (all writers and timescales) that could not be made because a read failed. */
  failedChecks: number;
}

/** Share of the judged SDK checks that may go without a verdict before the run is inconclusive. */
export const INCONCLUSIVE_SHARE = 0.1;

/** Why the run cannot be judged, or undefined when it can. */
export function inconclusive(report: SoakReport): string | undefined {
  const { sdkCheckedJudged: checked, sdkUnverifiableJudged: unverifiable } = report;
  if (checked === null || checked === 0) return `no SDK check was made at ${report.judgedTimescale}`;
  if ((unverifiable ?? 0) > checked * INCONCLUSIVE_SHARE)
    return `${unverifiable} of ${checked} SDK checks at ${report.judgedTimescale} reached no verdict (${report.failedChecks} checks failed on a read, ${report.observer?.unchecked['checked-late'] ?? 0} started too late to judge): the observer could not see, so the run proves nothing`;
  return undefined;
}

type ReportParts = Omit<
  SoakReport,
  | 'sdkInconsistentAt10s'
  | 'sdkCheckedAt10s'
  | 'sdkInconsistentJudged'
  | 'sdkCheckedJudged'
  | 'sdkUnverifiableJudged'
  | 'failedChecks'
>;

export function buildReport(parts: ReportParts): SoakReport {
  const at = (timescale: string) => (parts.observer ? checksAt(parts.observer, 'sdk', timescale) : undefined);
  const [at10s, judged] = [at('10s'), at(parts.judgedTimescale)];
  return {
    ...parts,
    sdkInconsistentAt10s: at10s?.inconsistent ?? null,
    sdkCheckedAt10s: at10s?.checked ?? null,
    sdkInconsistentJudged: judged?.inconsistent ?? null,
    sdkCheckedJudged: judged?.checked ?? null,
    sdkUnverifiableJudged: judged?.unverifiable ?? null,
    failedChecks: parts.observer ? failedChecks(parts.observer) : 0,
  };
}

/** Checks the observer could not make because a Redis or PostgreSQL read failed. */
export function failedChecks(observer: InspectReport): number {
  return (observer.unchecked['entry-read-failed'] ?? 0) + (observer.unchecked['row-read-failed'] ?? 0);
}

export function writeReport(file: string, report: SoakReport): void {
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`);
}

/** Printed: this many of the inconsistencies at 10 s and beyond, and of the rest (all are in the JSON). */
const PRINTED_LATE = 50;
const PRINTED_SHORT_TIMESCALE = 20;

/**
 * The inconsistencies worth a line each: the most recent at 10 s or later (what the soak is judged
 * on), and fewer at shorter timescales (expected while a fault is on).
 */
function printedInconsistencies(observer: InspectReport): InspectReport['inconsistencies'] {
  const late = (item: { timescale: string }): boolean => (durationMs(item.timescale) ?? 0) >= 10_000;
  return [
    ...observer.inconsistencies.filter((item) => !late(item)).slice(-PRINTED_SHORT_TIMESCALE),
    ...observer.inconsistencies.filter(late).slice(-PRINTED_LATE),
  ];
}

/** Inconsistencies counted by writer, timescale and cause: "sdk 1s purge-missing 12, …". */
function countByCause(observer: InspectReport): string {
  const counts = new Map<string, number>();
  for (const item of observer.inconsistencies) {
    const key = `${item.writer} ${item.timescale} ${item.cause}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return [...counts].map(([key, n]) => `${key} ${n}`).join(', ') || 'none';
}

/** The report as a person reads it at the end of a run. */
export function formatReport(report: SoakReport): string {
  const lines: string[] = [];
  const { workload } = report;
  const seconds = (Date.parse(report.endedAt) - Date.parse(report.startedAt)) / 1000;
  lines.push(
    `soak ${report.name} (${report.mode}${report.broken ? ', BROKEN: SDK key purges off' : ''}): ${seconds.toFixed(0)} s`,
    `workload: ${workload.sqlCommits} SQL commits, ${workload.writeBehindAccepted} writeBehind writes accepted, ` +
      `${workload.sdkReads} SDK reads, ${workload.plainReads} plain reads (${workload.plainFills} fills)`,
  );
  const errors = Object.entries(workload.errors);
  if (errors.length > 0)
    lines.push(`failed operations during faults: ${errors.map(([what, n]) => `${what} ×${n}`).join('; ')}`);
  const observer = report.observer;
  if (!observer) {
    lines.push('observer: no report (the inspector did not run)');
  } else {
    const printed = printedInconsistencies(observer);
    lines.push(
      renderReport({ ...observer, inconsistencies: printed }).trimEnd(),
      `inconsistencies reported: ${observer.inconsistencies.length} (${countByCause(observer)}); ` +
        `${printed.length} printed above, all in the JSON report`,
    );
  }
  lines.push(`faults (${report.faults.length}):`);
  for (const fault of report.faults)
    lines.push(`  ${fault.at} ${fault.kind} ${fault.target} (${fault.durationMs} ms): ${fault.detail}`);
  const restarts = Object.entries(report.restarts).filter(([, n]) => n > 0);
  if (restarts.length > 0) lines.push(`restarts: ${restarts.map(([id, n]) => `${id} ${n}`).join(', ')}`);
  const figure = (timescale: string, inconsistent: number | null, checked: number | null): string =>
    checked === null
      ? `SDK at ${timescale}: not measured`
      : `SDK at ${timescale}: ${inconsistent} confirmed inconsistencies in ${checked} checks`;
  lines.push(`checks that failed on a read (no verdict: counted as unverifiable): ${report.failedChecks}`);
  const why = inconclusive(report);
  if (why) lines.push(`INCONCLUSIVE: ${why}`);
  lines.push(figure('10s', report.sdkInconsistentAt10s, report.sdkCheckedAt10s));
  if (durationMs(report.judgedTimescale) !== 10_000)
    lines.push(
      `${figure(report.judgedTimescale, report.sdkInconsistentJudged, report.sdkCheckedJudged)} (the figure this run is judged on)`,
    );
  return lines.join('\n');
}
