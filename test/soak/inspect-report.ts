import { z } from 'zod';

/**
 * The observer's report (`GET /inspect` on the inspector role's ops port), read with a schema: it
 * comes from another process, and a field that changed shape must fail here, not as a NaN in the
 * soak's verdict.
 */
const Writer = z.enum(['sdk', 'other']);

export const InspectReport = z.object({
  since: z.string(),
  until: z.string(),
  changesSeen: z.number(),
  changesSampled: z.number(),
  dropped: z.number(),
  checks: z.array(
    z.object({
      timescale: z.string(),
      writer: Writer,
      checked: z.number(),
      consistent: z.number(),
      inconsistent: z.number(),
      unverifiable: z.number(),
      nines: z.number().nullable(),
      atLeast: z.boolean(),
    }),
  ),
  timeToConsistencyMs: z.record(
    Writer,
    z.object({ count: z.number(), p50: z.number(), p99: z.number(), p999: z.number() }),
  ),
  unchecked: z.record(z.string(), z.number()),
  inconsistencies: z.array(
    z.object({
      at: z.string(),
      key: z.string(),
      rule: z.string(),
      lsn: z.string(),
      commitTs: z.string(),
      timescale: z.string(),
      writer: Writer,
      entryVersion: z.string(),
      rowVersion: z.string().nullable(),
      cause: z.enum(['purge-missing', 'stale-fill', 'other-writer']),
    }),
  ),
});
export type InspectReport = z.infer<typeof InspectReport>;

export async function fetchInspectReport(port: number): Promise<InspectReport> {
  const response = await fetch(`http://127.0.0.1:${port}/inspect`, { signal: AbortSignal.timeout(10_000) });
  if (!response.ok) throw new Error(`GET /inspect answered ${response.status}: ${await response.text()}`);
  return InspectReport.parse(await response.json());
}

/** One sample of a Prometheus text exposition (summed over label sets matching `labels`). */
export async function scrapeGauge(
  port: number,
  name: string,
  labels: Record<string, string> = {},
): Promise<number | undefined> {
  const response = await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(10_000) });
  const text = await response.text();
  let total: number | undefined;
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const sampleLabels = match[2] ?? '';
    if (!Object.entries(labels).every(([key, value]) => sampleLabels.includes(`${key}="${value}"`))) continue;
    total = (total ?? 0) + Number(match[3]);
  }
  return total;
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
      inconsistent: 0,
      unverifiable: 0,
      nines: null,
      atLeast: false,
    }
  );
}
