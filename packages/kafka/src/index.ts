export * from './kafka-client.js';
export * from './topics.js';
