/**
 * Sum of the samples named `name` in one Prometheus text exposition whose labels include `labels`;
 * undefined when there is none (the metric is not registered, or has no such series yet).
 */
export function sumSamples(
  text: string,
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  let total: number | undefined;
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const sample = new Map(
      [...(match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)].map(
        (m) => [m[1], m[2]] as const,
      ),
    );
    if (Object.entries(labels).every(([key, value]) => sample.get(key) === value))
      total = (total ?? 0) + Number(match[3]);
  }
  return total;
}
