import type { InspectReport } from './inspect-report.js';

const percent = (nines: number | null, atLeast: boolean): string => {
  if (nines === null) return 'n/a';
  const consistent = 100 * (1 - 10 ** -nines);
  return `${atLeast ? '>= ' : ''}${nines.toFixed(2)} nines (${consistent.toPrecision(Math.max(3, Math.ceil(nines) + 2))}%)`;
};

/** `walpurge inspect`'s text: the figures an operator reads first, then the inconsistencies. */
export function renderReport(report: InspectReport): string {
  const lines = [
    ...(report.notRunning ? [`observer NOT running: ${report.notRunning}`] : []),
    `consistency ${report.since} .. ${report.until}`,
    `changes seen ${report.changesSeen}, sampled ${report.changesSampled}, dropped ${report.dropped}`,
    '',
    'timescale  writer  checked  consistent (absent)  inconsistent  unverifiable  nines',
  ];
  for (const row of report.checks) {
    if (row.checked === 0) continue;
    lines.push(
      [
        row.timescale.padEnd(9),
        row.writer.padEnd(6),
        String(row.checked).padStart(7),
        `${row.consistent} (${row.absent})`.padStart(19),
        String(row.inconsistent).padStart(12),
        String(row.unverifiable).padStart(12),
        percent(row.nines, row.atLeast),
      ].join('  '),
    );
  }
  for (const writer of ['sdk', 'other'] as const) {
    const t = report.timeToConsistencyMs[writer];
    if (t.count > 0 || t.neverConsistent > 0 || t.skippedLate > 0)
      lines.push(
        `time to consistency (${writer}): p50 ${t.p50} ms, p99 ${t.p99} ms, p99.9 ${t.p999} ms (${t.count} keys); never consistent by the last timescale: ${t.neverConsistent}` +
          (t.skippedLate > 0
            ? `; observer saw the change late (time to consistency unknown): ${t.skippedLate}`
            : ''),
      );
  }
  // Beside the time to consistency: a reader can tell the system's latency from the observer's.
  const lag = report.arrivalLagMs;
  if (lag.count > 0)
    lines.push(
      `observer arrival lag (commit to seen): p50 ${lag.p50} ms, p99 ${lag.p99} ms (${lag.count} changes)`,
    );
  const unchecked = Object.entries(report.unchecked);
  if (unchecked.length > 0)
    lines.push('', `not checked: ${unchecked.map(([reason, count]) => `${reason} ${count}`).join(', ')}`);
  if (report.inconsistencies.length > 0) {
    lines.push('', 'confirmed inconsistencies (most recent):');
    for (const i of report.inconsistencies)
      lines.push(
        `  ${i.at} ${i.key} rule ${i.rule} lsn ${i.lsn} at ${i.timescale} (${i.writer}): entry ${i.entryVersion}, row ${i.rowVersion ?? 'deleted'}: ${i.cause}`,
      );
  }
  return `${lines.join('\n')}\n`;
}
