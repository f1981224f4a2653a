export * from './errors.js';
export * from './lifecycle.js';
export * from './signals.js';
export * from './backoff.js';
export * from './redact.js';
export * from './logger.js';
export * from './metrics.js';
export * from './ops-server.js';
