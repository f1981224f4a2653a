import { parseTemplate, type ParsedTemplate, type Rule, type RuleOperation } from '@walpurge/config';
import type { Operation } from '@walpurge/protocol';
import { escapeGlob } from './glob.js';
import { encodeUrlValue } from './url-value.js';
import { qualifyTable } from './table-name.js';
import { cdnKinds, redisKinds, type CdnKind, type RedisKind } from './purge-targets.js';

export type TargetKind = `redis.${RedisKind}` | `cdn.${CdnKind}`;

export interface CompiledTemplate {
  kind: TargetKind;
  /** Config path, e.g. `rules[2].redis.keys[0]`, for errors and `explain`. */
  path: string;
  /** The same path as segments, for `problemAt`. */
  segments: Array<string | number>;
  parsed: ParsedTemplate;
  /** How a row value is made safe for this kind of target. */
  escape: (value: string) => string;
}

export interface CompiledRule {
  index: number;
  name: string;
  /** `schema.table`. */
  table: string;
  operations: ReadonlySet<Operation>;
  changed: readonly string[] | undefined;
  /** 'ignore-missing': an update that does not carry the old value of a `{col}` purges only the new entry (see plan.ts). */
  oldValues: 'required' | 'ignore-missing';
  templates: CompiledTemplate[];
  fallback: CompiledTemplate[];
  source: Rule;
}

export const operationCodes: Record<RuleOperation, Operation> = {
  insert: 'c',
  update: 'u',
  delete: 'd',
  truncate: 't',
};

const identity = (value: string): string => value;

/**
 * Row values are made safe per target: glob-escaped inside Redis patterns (a value `*` must not
 * match every key), percent-encoded inside CDN URLs and prefixes (a value `a/b`, `?x` or `a*` must
 * not address another resource; see url-value.ts), verbatim in exact keys, tags and namespaces,
 * where they cannot widen anything.
 */
export const escapers: Record<TargetKind, (value: string) => string> = {
  'redis.keys': identity,
  'redis.patterns': escapeGlob,
  'redis.tags': identity,
  'redis.namespaces': identity,
  'cdn.urls': encodeUrlValue,
  'cdn.tags': identity,
  'cdn.prefixes': encodeUrlValue,
};

type TargetSection = {
  redis?: Partial<Record<RedisKind, string[]>>;
  cdn?: Partial<Record<CdnKind, string[]>>;
};

function formatSegments(segments: ReadonlyArray<string | number>): string {
  return segments.map((s, i) => (typeof s === 'number' ? `[${s}]` : i === 0 ? s : `.${s}`)).join('');
}

function compileTemplates(
  section: TargetSection | undefined,
  base: Array<string | number>,
): CompiledTemplate[] {
  const out: CompiledTemplate[] = [];
  if (!section) return out;
  const add = (targetKind: TargetKind, sources: string[] | undefined): void => {
    const [group, kind] = targetKind.split('.') as [string, string];
    (sources ?? []).forEach((source, i) => {
      const segments = [...base, group, kind, i];
      out.push({
        kind: targetKind,
        path: formatSegments(segments),
        segments,
        parsed: parseTemplate(source),
        escape: escapers[targetKind],
      });
    });
  };
  for (const kind of redisKinds) add(`redis.${kind}`, section.redis?.[kind]);
  for (const kind of cdnKinds) add(`cdn.${kind}`, section.cdn?.[kind]);
  return out;
}

export function compileRule(rule: Rule, index: number): CompiledRule {
  const table = qualifyTable(rule.table);
  return {
    index,
    name: rule.name ?? `rules[${index}] ${table}`,
    table,
    operations: new Set(rule.on.map((name) => operationCodes[name])),
    changed: rule.when?.changed,
    oldValues: rule.oldValues ?? 'required',
    templates: compileTemplates(rule, ['rules', index]),
    fallback: compileTemplates(rule.fallback, ['rules', index, 'fallback']),
    source: rule,
  };
}
