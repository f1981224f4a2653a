export * from './schema/index.js';
export * from './template.js';
export * from './rule-columns.js';
export * from './env-substitution.js';
export * from './config-error.js';
export * from './load-config.js';
export * from './json-schema.js';
export * from './cdn-plans.js';
