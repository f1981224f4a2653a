export * from './kafka-client.js';
export * from './topics.js';
export * from './kafka-security.js';
export * from './kafka-refusals.js';
