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
export {
  publicationCoverage,
  type PublicationFacts,
  type TableCoverage,
} from './setup/publication-coverage.js';
