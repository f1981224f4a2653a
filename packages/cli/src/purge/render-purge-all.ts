import type { PurgeAllSummary } from './purge-all.js';

function list(label: string, entries: readonly string[], lines: string[]): void {
  if (entries.length === 0) return;
  const shown = entries.slice(0, 5).join(', ');
  lines.push(`  ${label.padEnd(16)} ${entries.length}: ${shown}${entries.length > 5 ? ', …' : ''}`);
}

/**
 * `walpurge purge --all` (and `slot reset --purge-all`) output: what was purged per kind, then
 * every unpurgeable template, loudly, with its rule, config path and reason.
 */
export function renderPurgeAllSummary(summary: PurgeAllSummary, keyPrefix = ''): string {
  const lines: string[] = [];
  const verb = summary.dryRun ? 'would purge' : 'purged';
  lines.push(
    `purge --all ${summary.dryRun ? '(dry run, nothing touched)' : 'done'}; targets: ${summary.targets.join(', ') || 'none'}`,
  );
  lines.push(`${verb}:`);
  list('redis keys', summary.redis.keys, lines);
  list('redis tags', summary.redis.tags, lines);
  for (const pattern of summary.redis.patterns) {
    const found =
      pattern.matched === undefined
        ? ''
        : ` (${pattern.matched} key(s) now${pattern.sample.length ? `, e.g. ${pattern.sample.join(', ')}` : ''})`;
    lines.push(`  ${'redis pattern'.padEnd(16)} ${pattern.pattern}${found}`);
  }
  for (const pattern of summary.redis.tagPatterns) {
    const sample = pattern.sample.length ? `, e.g. ${pattern.sample.join(', ')}` : '';
    lines.push(`  ${'redis tag sets'.padEnd(16)} ${pattern.pattern}: ${pattern.tagSets} found${sample}`);
  }
  const namespaces = summary.redis.namespaces;
  list('redis namespaces', namespaces.exact, lines);
  for (const pattern of namespaces.patterns) {
    const sample = pattern.sample.length ? `, e.g. ${pattern.sample.join(', ')}` : '';
    lines.push(
      `  ${'redis namespaces'.padEnd(16)} ${pattern.pattern}: ${pattern.versions} version key(s) found${sample}`,
    );
  }
  if (namespaces.bumped > 0)
    lines.push(
      `  ${namespaces.bumped} namespace version(s) given a fresh value: entries stored under the old ones are unreachable`,
    );
  list('cdn urls', summary.cdn.urls, lines);
  list('cdn tags', summary.cdn.tags, lines);
  list('cdn prefixes', summary.cdn.prefixes, lines);
  if (keyPrefix) lines.push(`  (redis names are shown without redis.keyPrefix '${keyPrefix}')`);
  if (summary.unpurgeable.length > 0) {
    lines.push('');
    lines.push(
      `NOT PURGED: ${summary.unpurgeable.length} template(s) whose key space cannot be purged wholesale; their entries may still be stale:`,
    );
    for (const item of summary.unpurgeable) {
      const target = item.target ? ` on ${item.target}` : '';
      lines.push(
        `  ${item.path} ${JSON.stringify(item.template)} (rule ${item.rule})${target}: ${item.reason}`,
      );
    }
  }
  return `${lines.join('\n')}\n`;
}
