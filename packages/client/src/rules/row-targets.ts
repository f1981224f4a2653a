import type { Rule } from '@walpurge/config';
import { ErrorCode, WalpurgeError } from '@walpurge/core';
import type { ChangeEvent } from '@walpurge/protocol';
import {
  compileRules,
  qualifyTable,
  renderTemplate,
  type CompiledRules,
  type TargetKind,
} from '@walpurge/rules';

/**
 * The application's side of the rules file: the names a row's cache entries and responses must carry
 * so that the invalidator's purges reach them. Rendered exactly as the invalidator renders them for
 * an insert of the row (same templates, same escaping), so the two can never disagree.
 *
 * `{old.col}` templates name what a row USED to be; a row being stored has no old side, so they are
 * skipped. A template that needs a column the row lacks is an error: the entry would carry a name
 * no purge ever uses.
 */
export interface RowTargets {
  /**
   * `redis.keys` of the table's rules rendered from this row. `templates` picks some of them by their
   * text (e.g. ['user:{id}']): the keys that hold the row itself, for writeBehind/writeThrough. A
   * template that no rule of the table lists is an error: the invalidator would never purge it.
   */
  redisKeys(table: string, row: Record<string, unknown>, templates?: readonly string[]): string[];
  /** Throws unless every template is one of the table's rules' `redis.keys`. */
  checkKeyTemplates(table: string, templates: readonly string[]): void;
  /** `redis.tags`: pass as get(…, { tags }). */
  redisTags(table: string, row: Record<string, unknown>): string[];
  /** `redis.namespaces`: pass as get(…, { namespaces }). */
  redisNamespaces(table: string, row: Record<string, unknown>): string[];
  /** `cdn.tags`: pass to applyCacheHeaders({ tags }) for Surrogate-Key / Cache-Tag. */
  cdnTags(table: string, row: Record<string, unknown>): string[];
}

export function rowTargetsFromRules(rules: readonly Rule[] | CompiledRules): RowTargets {
  const compiled = 'rulesFor' in rules ? rules : compileRules(rules);
  const checkKnown = (kind: TargetKind, qualified: string, only: readonly string[]): void => {
    const known = new Set(
      compiled
        .rulesFor(qualified)
        .flatMap((rule) => rule.templates.filter((t) => t.kind === kind).map((t) => t.parsed.source)),
    );
    const unknown = only.filter((source) => !known.has(source));
    if (unknown.length > 0) {
      throw new WalpurgeError(
        ErrorCode.ConfigInvalid,
        `${unknown.map((source) => JSON.stringify(source)).join(', ')} ${unknown.length === 1 ? 'is' : 'are'} not among the ${kind} of any rule for ${qualified}`,
        { hint: "add the key to the table's rule so the invalidator purges it, or fix the spelling" },
      );
    }
  };
  const render = (
    kind: TargetKind,
    table: string,
    row: Record<string, unknown>,
    only?: readonly string[],
  ): string[] => {
    const qualified = qualifyTable(table);
    if (only) checkKnown(kind, qualified, only);
    const dot = qualified.indexOf('.');
    const event: ChangeEvent = {
      v: 1,
      op: 'c',
      source: {
        db: '',
        schema: qualified.slice(0, dot),
        table: qualified.slice(dot + 1),
        lsn: '0/0',
        xid: 0,
        commitTs: new Date(0).toISOString(),
        origin: null,
      },
      key: null,
      before: null,
      after: row,
      unchanged: [],
    };
    const out: string[] = [];
    for (const rule of compiled.rulesFor(qualified)) {
      for (const template of rule.templates) {
        if (template.kind !== kind || (only && !only.includes(template.parsed.source))) continue;
        const result = renderTemplate(template, event, 'new');
        if (result.ok) {
          if (!out.includes(result.text)) out.push(result.text);
        } else if ('unknown' in result) {
          throw new WalpurgeError(
            ErrorCode.WriteInvalid,
            `${template.path} (${template.parsed.source}) needs column ${result.unknown.column}, which the ${qualified} row does not have`,
            { hint: 'pass the whole row (or at least every column the rules use)' },
          );
        }
      }
    }
    return out;
  };
  return {
    checkKeyTemplates: (table, templates) => checkKnown('redis.keys', qualifyTable(table), templates),
    redisKeys: (table, row, templates) => render('redis.keys', table, row, templates),
    redisTags: (table, row) => render('redis.tags', table, row),
    redisNamespaces: (table, row) => render('redis.namespaces', table, row),
    cdnTags: (table, row) => render('cdn.tags', table, row),
  };
}
