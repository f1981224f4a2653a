import type { Cluster, Redis } from 'ioredis';
import type { ConfigProblem, RedisConfig } from '@walpurge/config';
import { createLogger, errorMessage } from '@walpurge/core';
import { clusterMasters } from '@walpurge/invalidator';
import type { CompiledRule, CompiledTemplate, ProblemAt } from '@walpurge/rules';
import { openCacheRedis } from '../purge/cache-redis.js';

/**
 * `validate`'s view of what pattern rules cost. The invalidator serves patterns with sweeps of the
 * whole cache Redis (every key, whatever its prefix: SCAN walks the full hash table), so a purge
 * waits for a sweep whose time grows with the keyspace, not with the keys it deletes. This turns
 * DBSIZE and a short SCAN sample into keys per sweep and seconds per sweep, and points out patterns
 * a tag would serve. Warnings only: the daemon honours every pattern, just slowly.
 */

export interface SweepEstimate {
  /** Keys on each master (one entry on a standalone server). */
  keysPerMaster: number[];
  /** SCAN speed used, keys/s. */
  keysPerSecond: number;
  /** 'measured' on the cache Redis, or 'stated' with --scan-rate. */
  rate: 'measured' | 'stated';
  /** Masters are swept in parallel: the largest one sets the pace. */
  sweepSeconds: number;
}

/** How long a SCAN sample may run: enough for a rate, short enough for a check. */
const SAMPLE_MS = 300;

export async function estimateSweep(client: Redis | Cluster, statedRate?: number): Promise<SweepEstimate> {
  const nodes = client.isCluster
    ? await clusterMasters(client as Cluster, AbortSignal.timeout(10_000), 5_000)
    : [client as Redis];
  const keysPerMaster = await Promise.all(nodes.map((node) => node.dbsize()));
  const largest = Math.max(0, ...keysPerMaster);
  const biggest = nodes[keysPerMaster.indexOf(largest)] ?? (nodes[0] as Redis);
  if (statedRate !== undefined) {
    return { keysPerMaster, keysPerSecond: statedRate, rate: 'stated', sweepSeconds: largest / statedRate };
  }
  const sample = await sampleScan(biggest);
  const keysPerSecond = sample.seconds > 0 ? sample.keys / sample.seconds : 0;
  // A sample that walked the whole master is the sweep time itself.
  const sweepSeconds = sample.complete ? sample.seconds : keysPerSecond > 0 ? largest / keysPerSecond : 0;
  return { keysPerMaster, keysPerSecond, rate: 'measured', sweepSeconds };
}

async function sampleScan(node: Redis): Promise<{ keys: number; seconds: number; complete: boolean }> {
  const started = performance.now();
  let cursor = '0';
  let keys = 0;
  do {
    const [next, found] = await node.scan(cursor, 'COUNT', 1000);
    cursor = next;
    keys += found.length;
  } while (cursor !== '0' && performance.now() - started < SAMPLE_MS);
  return { keys, seconds: (performance.now() - started) / 1000, complete: cursor === '0' };
}

/**
 * `prefix{col}:*`-shaped patterns (literal text, row values, one trailing `*`, nothing else): all
 * keys of one row. A tag per row (`tags: ['prefix{col}']`, registered by @walpurge/client when
 * the keys are cached) purges exactly them without walking the keyspace.
 */
export function tagSuggestion(template: CompiledTemplate): string | undefined {
  const { parts } = template.parsed;
  const last = parts[parts.length - 1];
  if (!parts.some((part) => part.kind === 'field') || last?.kind !== 'text' || !last.text.endsWith('*')) {
    return undefined;
  }
  const wildcard = /[*?[\]\\]/;
  const texts = parts.filter((part) => part.kind === 'text').map((part) => part.text);
  if (texts.slice(0, -1).some((text) => wildcard.test(text)) || wildcard.test(last.text.slice(0, -1))) {
    return undefined;
  }
  return template.parsed.source.slice(0, -1).replace(/[:/._-]$/, '');
}

function patternTemplates(
  rules: readonly CompiledRule[],
): Array<{ rule: CompiledRule; template: CompiledTemplate }> {
  return rules.flatMap((rule) =>
    [...rule.templates, ...rule.fallback]
      .filter((template) => template.kind === 'redis.patterns')
      .map((template) => ({ rule, template })),
  );
}

const count = (n: number): string => Math.round(n).toLocaleString('en-US');
const seconds = (s: number): string =>
  s < 1 ? `${Math.max(1, Math.round(s * 1000))} ms` : `${s.toFixed(1)} s`;

export function describeSweep(estimate: SweepEstimate): string {
  const total = estimate.keysPerMaster.reduce((sum, n) => sum + n, 0);
  const masters =
    estimate.keysPerMaster.length > 1
      ? ` on ${estimate.keysPerMaster.length} masters swept in parallel (largest: ${count(Math.max(...estimate.keysPerMaster))})`
      : '';
  return `${count(total)} keys per sweep${masters}, about ${seconds(estimate.sweepSeconds)} per sweep at ${count(estimate.keysPerSecond)} keys/s (${estimate.rate})`;
}

export interface PatternWarningsInput {
  rules: readonly CompiledRule[];
  problemAt: ProblemAt;
  /** The cache Redis; undefined when none is configured or with --offline (tag hints only). */
  redis?: RedisConfig;
  /** --scan-rate: keys/s instead of a measurement. */
  statedRate?: number;
}

/** One warning per pattern template: its sweep cost when Redis is reachable, and a tag hint where one fits. */
export async function patternWarnings(input: PatternWarningsInput): Promise<ConfigProblem[]> {
  const patterns = patternTemplates(input.rules);
  if (patterns.length === 0) return [];
  let estimate: SweepEstimate | undefined;
  const warnings: ConfigProblem[] = [];
  if (input.redis) {
    let client: Redis | Cluster | undefined;
    try {
      client = await openCacheRedis(input.redis, createLogger({ level: 'silent', pretty: false }));
      estimate = await estimateSweep(client, input.statedRate);
    } catch (error) {
      warnings.push(
        input.problemAt(
          ['redis'],
          `pattern purge cost not estimated: ${errorMessage(error).split('\n')[0] ?? ''}`,
        ),
      );
    } finally {
      client?.disconnect();
    }
  }
  for (const { rule, template } of patterns) {
    const tag = tagSuggestion(template);
    if (estimate === undefined && tag === undefined) continue;
    const named = rule.source.name === undefined ? '' : `rule '${rule.source.name}': `;
    const cost =
      estimate === undefined
        ? ''
        : `each purge of the pattern '${template.parsed.source}' waits for a sweep of the whole cache Redis: ${describeSweep(estimate)}`;
    const hint =
      tag === undefined
        ? ''
        : `${cost ? '; ' : ''}the pattern '${template.parsed.source}' names the keys of one row: a tag per row (tags: ['${tag}'], registered by @walpurge/client when the keys are cached) purges them without a sweep`;
    warnings.push(input.problemAt(template.segments, `${named}${cost}${hint}`));
  }
  return warnings;
}
