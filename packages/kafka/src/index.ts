export * from './kafka-client.js';
export * from './replication.js';
export * from './topic-config.js';
export * from './topic-durability.js';
export * from './topics.js';
export * from './kafka-security.js';
export * from './kafka-refusals.js';
export * from './commit-batch.js';
