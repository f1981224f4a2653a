import { ErrorCode, WalpurgeError } from '@walpurge/core';
import type { PublicationFacts } from './publication-coverage.js';
import { formatTableName, quoteIdent, quoteTable } from './table-names.js';

/**
 * Every rule's table must reach the listener under the rule's name, or the rule never matches and
 * nothing is purged. Two ways it would not: the publication does not carry the table (possible when
 * database.tables lists the tables to publish), or the table is a partition (its changes are
 * reported under its partitioned table, which rules must name instead).
 * `coverage.tables` is in rule order: entry i is rules[i]'s table.
 */
export function assertRulesPublished(
  publication: string,
  coverage: PublicationFacts,
  configuredTables: boolean,
): void {
  const problems: string[] = [];
  const hints: string[] = [];
  coverage.tables.forEach((table, index) => {
    const name = formatTableName(table);
    if (!table.exists) {
      problems.push(`rules[${index}]: table ${name} not found`);
      hints.push(`check rules[${index}].table`);
    } else if (table.partitionRoot) {
      const root = formatTableName(table.partitionRoot);
      problems.push(
        `rules[${index}]: ${name} is a partition of ${root}; walpurge reports a partition's changes under ${root}, so this rule would never match`,
      );
      hints.push(`write rules[${index}] for table ${root}`);
    } else if (!table.published) {
      problems.push(`rules[${index}]: table ${name} is not in publication "${publication}"`);
      hints.push(
        configuredTables
          ? `add ${name} to database.tables, or run ALTER PUBLICATION ${quoteIdent(publication)} ADD TABLE ${quoteTable(table)}`
          : `run ALTER PUBLICATION ${quoteIdent(publication)} ADD TABLE ${quoteTable(table)}`,
      );
    }
  });
  if (problems.length === 0) return;
  throw new WalpurgeError(ErrorCode.PublicationMismatch, problems.join('; '), {
    hint: hints.join('; '),
  });
}
