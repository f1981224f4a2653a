export * from './write/index.js';
export * from './read/index.js';
export * from './http/index.js';
export * from './rules/index.js';
