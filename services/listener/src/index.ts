export {
  createListener,
  defaultListenerTuning,
  type Listener,
  type ListenerOptions,
  type ListenerSink,
  type ListenerTuning,
} from './listener.js';
export {
  createKafkaSink,
  toKafkaMessage,
  type KafkaSink,
  type KafkaSinkOptions,
} from './kafka/kafka-sink.js';
export { RecordingSink } from './testing/recording-sink.js';
export { tablesToPublish, parseTableName, type TableName } from './setup/table-names.js';
export { TypeConverters, REPLICATION_SESSION_OPTIONS, type PgTypeRow } from './decode/value-converters.js';
export { loadTypes } from './setup/catalog.js';
export { checkStatusInterval, readWalSenderTimeoutMs } from './setup/wal-sender-timeout.js';
export {
  partialPublication,
  publicationCoverage,
  type PublicationFacts,
  type TableCoverage,
} from './setup/publication-coverage.js';
export { standbyServer } from './setup/preflight.js';
export { readSlot, ensureSlot, type SlotState } from './setup/slot.js';
export {
  checkSlotIdentity,
  ensureHistoryTable,
  historyTableSql,
  readHistory,
  recordSlotIdentity,
  systemIdentifier,
  type SlotHistory,
} from './setup/slot-history.js';
export { ensurePublication } from './setup/publication.js';
