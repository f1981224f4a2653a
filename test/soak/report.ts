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
  /** The figure the soak is about: confirmed stale SDK entries at the 10 s timescale. */
  sdkInconsistentAt10s: number | null;
  sdkCheckedAt10s: number | null;
}

export function buildReport(parts: Omit<SoakReport, 'sdkInconsistentAt10s' | 'sdkCheckedAt10s'>): SoakReport {
  const at10s = parts.observer ? checksAt(parts.observer, 'sdk', '10s') : undefined;
  return {
    ...parts,
    sdkInconsistentAt10s: at10s?.inconsistent ?? null,
    sdkCheckedAt10s: at10s?.checked ?? null,
  };
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
  lines.push(
    report.sdkCheckedAt10s === null
      ? 'SDK at 10 s: not measured'
      : `SDK at 10 s: ${report.sdkInconsistentAt10s} confirmed inconsistencies in ${report.sdkCheckedAt10s} checks`,
  );
  return lines.join('\n');
}
