export * from './lsn.js';
export * from './change-event.js';
export * from './decode.js';
export * from './transport.js';
export * from './debezium.js';
export * from './kafka-record-size.js';
export * from './kafka-topics.js';
export * from './trace-headers.js';
