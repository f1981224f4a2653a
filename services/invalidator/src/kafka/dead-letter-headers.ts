/** Headers a dead letter carries besides the original message's own. */
export const deadLetterHeaders = {
  error: 'x-walpurge-error',
  errorCode: 'x-walpurge-error-code',
  reason: 'x-walpurge-reason',
  topic: 'x-walpurge-source-topic',
  partition: 'x-walpurge-source-partition',
  offset: 'x-walpurge-source-offset',
  /** Only on a dead letter cut to fit the size limit: what was left out (`value` or `value,key,headers`). */
  truncated: 'x-walpurge-truncated',
  /** Only on a cut dead letter: the original value's size in bytes. */
  originalBytes: 'x-walpurge-original-bytes',
  /** Refused events (not undecodable ones): why (`purge-rejected`, `cdn-rejected`), for `dlq --reason`. */
  cause: 'walpurge-cause',
  /** Refused events: the target that refused (`redis`, a CDN provider). */
  target: 'walpurge-target',
  /** Refused events: the rules that matched, comma-separated, for `dlq --rule`. */
  rules: 'walpurge-rules',
  /** Refused events: the event's `schema.table`, for `dlq --table`. */
  table: 'walpurge-table',
} as const;
