import { InspectReport } from '@walpurge/inspector';
import { sumSamples } from '../e2e/support/metric-samples.js';

/**
 * Reads the observer's report (`GET /inspect` on the inspector role's ops port) with its schema:
 * it comes from another process, and a field that changed shape must fail here, not as a NaN in
 * the soak's verdict.
 */
export async function fetchInspectReport(port: number): Promise<InspectReport> {
  const response = await fetch(`http://127.0.0.1:${port}/inspect`, { signal: AbortSignal.timeout(10_000) });
  if (!response.ok) throw new Error(`GET /inspect answered ${response.status}: ${await response.text()}`);
  return InspectReport.parse(await response.json());
}

/** A metric of the role listening on `port` (summed over its series matching `labels`). */
export async function scrapeGauge(
  port: number,
  name: string,
  labels: Record<string, string> = {},
): Promise<number | undefined> {
  const response = await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(10_000) });
  return sumSamples(await response.text(), name, labels);
}

/** A duration in ms, in the forms the config and the report use ('10s', '10000ms', '1m'; bare: ms). */
export function durationMs(text: string): number | undefined {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$/.exec(text);
  if (!match) return undefined;
  const unit = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 }[match[2] ?? 'ms'] ?? 1;
  return Number(match[1]) * unit;
}

/** The checks of one writer at one timescale, or zeros when the observer made none. */
export function checksAt(
  report: InspectReport,
  writer: 'sdk' | 'other',
  timescale: string,
): InspectReport['checks'][number] {
  const wanted = durationMs(timescale);
  return (
    report.checks.find((row) => row.writer === writer && durationMs(row.timescale) === wanted) ?? {
      timescale,
      writer,
      checked: 0,
      consistent: 0,
      absent: 0,
      inconsistent: 0,
      unverifiable: 0,
      nines: null,
      atLeast: false,
    }
  );
}
