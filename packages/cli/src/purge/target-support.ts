import type { Purger } from '@walpurge/invalidator';
import { emptyTargets, type PurgeTargets } from '@walpurge/rules';
import type { Placed, Unpurgeable, WholesaleKind } from './key-space.js';

function only(kind: WholesaleKind, entry: string): PurgeTargets {
  const targets = emptyTargets();
  if (kind === 'redis.tagPatterns') targets.redis.tags.push(entry);
  else {
    const [section, list] = kind.split('.') as ['redis' | 'cdn', string];
    (targets[section] as unknown as Record<string, string[]>)[list]?.push(entry);
  }
  return targets;
}

/** Targets that cannot take an entry: no Redis/CDN configured, or a CDN driver without that kind. */
export function unsupported(placed: Placed, purgers: readonly Purger[]): Unpurgeable[] {
  const base = { rule: placed.rule, path: placed.path, template: placed.template, kind: placed.kind };
  if (placed.as.startsWith('redis.')) {
    if (purgers.some((purger) => purger.stage === 'redis')) return [];
    return [{ ...base, target: 'redis', reason: 'no redis section is configured' }];
  }
  const cdn = purgers.filter((purger) => purger.stage === 'cdn');
  if (cdn.length === 0) return [{ ...base, target: 'cdn', reason: 'no cdn driver is configured' }];
  const kind = placed.as.slice(4);
  const what =
    placed.kind === 'cdn.urls' && placed.as === 'cdn.prefixes'
      ? 'prefixes (needed for a templated URL)'
      : kind;
  return cdn
    .filter((purger) => purger.count(only(placed.as, placed.entry)) === 0)
    .map((purger) => ({ ...base, target: purger.name, reason: `${purger.name} cannot purge cdn ${what}` }));
}
