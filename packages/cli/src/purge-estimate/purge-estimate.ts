import type pg from 'pg';
import { z } from 'zod';
import { cloudFrontLimits, type ConfigProblem, type WalpurgeConfig } from '@walpurge/config';
import { cdnKinds, type CdnKind, type CompiledRule } from '@walpurge/rules';
import { cdnItemsPerEvent, noItems, rowOperations, type KindCounts } from './items-per-event.js';
import { providerModels, type Channel } from './provider-models.js';
import { loadChangeRates, type ChangeRate } from './table-change-rates.js';

/** The CDN lane's default coalescing window, when the config does not set cdn.coalesceWindowMs. */
const DEFAULT_COALESCE_WINDOW_MS = 2000;
const SECONDS_PER_MONTH = 30 * 24 * 3600;
/** Invalidations take minutes; a wildcard path counts against the 15 in flight for at least this long. */
const MIN_INVALIDATION_SECONDS = 60;

export interface PurgeEstimate {
  coalesceWindowMs: number;
  tables: Array<{ table: string; perEvent: Record<string, KindCounts>; rate?: ChangeRate }>;
  providers: Array<{ provider: string; itemsPerSecond: KindCounts; callsPerSecond: number }>;
  lines: string[];
  warnings: ConfigProblem[];
}

/** The configured window; 0 is valid and means no coalescing (each entry is sent as it comes). */
function coalesceWindowMs(config: WalpurgeConfig): number {
  const parsed = z.object({ coalesceWindowMs: z.number().nonnegative() }).safeParse(config.cdn);
  return parsed.success ? parsed.data.coalesceWindowMs : DEFAULT_COALESCE_WINDOW_MS;
}

/** Whole numbers as they are, rates with two decimals (two significant digits below 1). */
const fmt = (n: number): string =>
  Number.isInteger(n) ? String(n) : n >= 100 ? n.toFixed(0) : n >= 1 ? n.toFixed(2) : n.toPrecision(2);

function describeCounts(counts: KindCounts): string {
  const parts = cdnKinds.filter((kind) => counts[kind] > 0).map((kind) => `${fmt(counts[kind])} ${kind}`);
  return parts.length ? parts.join(', ') : 'none';
}

/**
 * Calls per second for `items` per second when the lane sends what one window gathered: below
 * one item per window every item is a call of its own, above it the window's items fill calls
 * of `perCall`. Coalescing of duplicates is ignored: an upper bound.
 */
export function callsPerSecond(itemsPerSecond: number, perCall: number, windowSeconds: number): number {
  if (itemsPerSecond === 0) return 0;
  const perWindow = itemsPerSecond * windowSeconds;
  return perWindow < 1 ? itemsPerSecond : Math.ceil(perWindow / perCall) / windowSeconds;
}

function channelCalls(channel: Channel, items: KindCounts, windowSeconds: number): number {
  const kinds = Object.keys(channel.perCall) as CdnKind[];
  if (channel.sharedBatch !== undefined) {
    const total = kinds.reduce((sum, kind) => sum + items[kind], 0);
    return callsPerSecond(total, channel.sharedBatch, windowSeconds);
  }
  return kinds.reduce(
    (sum, kind) => sum + callsPerSecond(items[kind], channel.perCall[kind] ?? 1, windowSeconds),
    0,
  );
}

/**
 * `walpurge validate`: how many CDN items each row change renders and, with a database, how many
 * items and API calls per second each provider will get at the tables' recorded change rates,
 * with warnings where a documented or configured limit would be exceeded.
 */
export async function estimatePurges(
  config: WalpurgeConfig,
  rules: readonly CompiledRule[],
  client: pg.ClientBase | undefined,
): Promise<PurgeEstimate | undefined> {
  const perTable = cdnItemsPerEvent(rules);
  const withCdn = [...perTable].filter(([, ops]) =>
    rowOperations.some((op) => cdnKinds.some((k) => ops[op][k] > 0)),
  );
  const models = providerModels(config.cdn);
  if (withCdn.length === 0 || models.length === 0) return undefined;
  const windowMs = coalesceWindowMs(config);
  const rates = client
    ? await loadChangeRates(
        client,
        withCdn.map(([table]) => table),
      )
    : undefined;
  const lines = [
    `CDN purge estimate (${windowMs > 0 ? `coalescing window ${windowMs} ms` : 'no coalescing'}${rates ? '; change rates averaged since the statistics reset or server start' : '; no database: per event only'}):`,
  ];
  const warnings: ConfigProblem[] = [];
  const total = noItems();
  const tables: PurgeEstimate['tables'] = [];
  for (const [table, ops] of withCdn) {
    const rate = rates?.get(table);
    const perEvent = { insert: ops.c, update: ops.u, delete: ops.d };
    tables.push({ table, perEvent, ...(rate ? { rate } : {}) });
    const each = `insert ${describeCounts(ops.c)}; update ${describeCounts(ops.u)}; delete ${describeCounts(ops.d)}`;
    if (!rate) {
      lines.push(`  ${table}: per event: ${each}`);
      continue;
    }
    for (const kind of cdnKinds)
      total[kind] +=
        rate.insertsPerSecond * ops.c[kind] +
        rate.updatesPerSecond * ops.u[kind] +
        rate.deletesPerSecond * ops.d[kind];
    lines.push(
      `  ${table}: ${fmt(rate.insertsPerSecond)} inserts/s, ${fmt(rate.updatesPerSecond)} updates/s, ${fmt(rate.deletesPerSecond)} deletes/s; per event: ${each}`,
    );
  }
  const providers: PurgeEstimate['providers'] = [];
  if (rates) {
    const windowSeconds = windowMs / 1000;
    for (const model of models) {
      const supported = noItems();
      for (const channel of model.channels)
        for (const kind of Object.keys(channel.perCall) as CdnKind[]) supported[kind] = total[kind];
      let calls = 0;
      const limits: string[] = [];
      for (const channel of model.channels) {
        const channelItems = (Object.keys(channel.perCall) as CdnKind[]).reduce(
          (sum, kind) => sum + total[kind],
          0,
        );
        const channelCallsPerSecond = channelCalls(channel, total, windowSeconds);
        calls += channelCallsPerSecond;
        if (!channel.limit) continue;
        const load = channel.limit.unit === 'calls' ? channelCallsPerSecond : channelItems;
        limits.push(
          `${channel.label} ${fmt(load)}/${fmt(channel.limit.perSecond)} ${channel.limit.unit}/s (${channel.limit.source})`,
        );
        if (load > channel.limit.perSecond)
          warnings.push({
            path: `cdn.${model.provider}`,
            message: `about ${fmt(load)} ${channel.limit.unit}/s of ${channel.label} expected at the tables' recorded change rates, above the ${channel.limit.source} limit of ${fmt(channel.limit.perSecond)}/s: purges will wait on the rate limit and the CDN lag grow; raise the plan or limit, or render fewer CDN items per row`,
          });
      }
      providers.push({ provider: model.provider, itemsPerSecond: supported, callsPerSecond: calls });
      lines.push(
        `  ${model.provider}: ${describeCounts(supported)} per second → ${fmt(calls)} API calls/s${limits.length ? `; limits: ${limits.join(', ')}` : ''}`,
      );
      if (model.provider === 'cloudfront') {
        const pathsPerMonth = (total.urls + total.prefixes) * SECONDS_PER_MONTH;
        lines.push(
          `  cloudfront: about ${fmt(pathsPerMonth)} invalidation paths a month (${cloudFrontLimits.freePathsPerMonth} free)`,
        );
        if (pathsPerMonth > cloudFrontLimits.freePathsPerMonth)
          warnings.push({
            path: 'cdn.cloudfront',
            message: `about ${fmt(pathsPerMonth)} invalidation paths a month expected, above the ${cloudFrontLimits.freePathsPerMonth} AWS includes for free: each further path is billed; purge by prefix or render fewer URLs per row`,
          });
        const wildcardsInFlight = total.prefixes * MIN_INVALIDATION_SECONDS;
        if (
          wildcardsInFlight >
          (config.cdn?.cloudfront?.maxWildcardPathsInFlight ?? cloudFrontLimits.maxWildcardPathsInFlight)
        )
          warnings.push({
            path: 'cdn.cloudfront',
            message: `about ${fmt(total.prefixes)} wildcard paths/s expected; CloudFront allows 15 in invalidations in progress, which take minutes, so prefix purges will queue behind each other`,
          });
      }
    }
  }
  return { coalesceWindowMs: windowMs, tables, providers, lines, warnings };
}
