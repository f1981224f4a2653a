import type { DeadLetterSelection } from '@walpurge/invalidator';

/**
 * One dead letter as `walpurge dlq list` shows it, the same in both transports: where it is kept
 * differs (a Kafka record, a table row), what an operator selects and reads does not.
 */
export interface DeadLetterEntry {
  /** `partition:offset` on the dead-letter topic; the row id in the dead-letter table. */
  id: string;
  /** When it was dead-lettered (ISO-8601). */
  deadLetteredAt: string;
  /** purge-rejected, cdn-rejected, undecodable. */
  cause: string;
  /** The target that refused it; null when none did (undecodable). */
  target: string | null;
  /** `schema.table`; null when the message could not be decoded. */
  table: string | null;
  rules: string[];
  lsn: string | null;
  errorCode: string;
  error: string;
  /** The change message key (the Kafka record key; `schema.table:{pk}`). */
  key: string | null;
  /** The event in the wire protocol (or the undecodable value as it came). */
  event: string;
}

/** The selection applied in memory (the Kafka topic cannot be queried). */
export function selects(selection: DeadLetterSelection, entry: DeadLetterEntry): boolean {
  if (selection.rule !== undefined && !entry.rules.includes(selection.rule)) return false;
  if (selection.table !== undefined && entry.table !== selection.table) return false;
  if (selection.cause !== undefined && entry.cause !== selection.cause) return false;
  const at = Date.parse(entry.deadLetteredAt);
  if (selection.since !== undefined && !(at >= selection.since.getTime())) return false;
  if (selection.until !== undefined && !(at < selection.until.getTime())) return false;
  return true;
}

/** Two or three lines per entry: what, why, and the start of the event. */
export function formatEntry(entry: DeadLetterEntry): string {
  const head = [
    entry.id,
    entry.deadLetteredAt,
    entry.cause,
    `table ${entry.table ?? '-'}`,
    `target ${entry.target ?? '-'}`,
    `rules ${entry.rules.length > 0 ? entry.rules.join(',') : '-'}`,
    `lsn ${entry.lsn ?? '-'}`,
  ].join('  ');
  return `${head}\n    ${entry.errorCode}: ${entry.error}\n    ${entry.event.slice(0, 300)}`;
}
