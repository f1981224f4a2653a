// writeThrough / writeBehind / deleteThrough: needs the optional peers bullmq and pg.
export * from './write-client.js';
export * from './row-check.js';
export * from './durability.js';
export { CacheWriter, type CacheWriterOptions, type EntryLifetime } from './cache-writer.js';
