import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { FaultRecord } from './faults.js';
import { checksAt, type InspectReport } from './inspect-report.js';
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

const pad = (text: string | number, width: number): string => String(text).padStart(width);
const nines = (row: InspectReport['checks'][number]): string =>
  row.nines === null ? '-' : `${row.atLeast ? '>=' : ''}${row.nines.toFixed(2)}`;

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
    lines.push(
      `observer: ${observer.changesSeen} changes seen, ${observer.changesSampled} checked, ${observer.dropped} dropped ` +
        `(${observer.since} .. ${observer.until})`,
      'timescale  writer  checked      consistent   inconsistent  unverifiable  nines',
    );
    for (const row of observer.checks)
      lines.push(
        `${pad(row.timescale, 9)}  ${row.writer.padEnd(6)}  ${pad(row.checked, 11)}  ${pad(row.consistent, 11)}  ` +
          `${pad(row.inconsistent, 12)}  ${pad(row.unverifiable, 12)}  ${nines(row)}`,
      );
    for (const [writer, time] of Object.entries(observer.timeToConsistencyMs))
      lines.push(
        `time to consistency (${writer}): ${time.count} samples, p50 ${time.p50} ms, p99 ${time.p99} ms, p99.9 ${time.p999} ms`,
      );
    const unchecked = Object.entries(observer.unchecked);
    if (unchecked.length > 0)
      lines.push(`not checked: ${unchecked.map(([reason, n]) => `${reason} ${n}`).join(', ')}`);
    lines.push(`inconsistencies (most recent ${observer.inconsistencies.length}):`);
    for (const item of observer.inconsistencies)
      lines.push(
        `  ${item.at} ${item.writer} ${item.timescale} ${item.cause} key ${item.key} rule ${item.rule} lsn ${item.lsn} ` +
          `entry v${item.entryVersion} row v${item.rowVersion ?? 'gone'}`,
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
