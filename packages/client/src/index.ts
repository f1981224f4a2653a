// Reads only: nothing here may load bullmq or pg (optional peers, needed by ./write alone).
// Writes: @walpurge/client/write. HTTP cache headers: @walpurge/client/http.
export * from './read/index.js';
export * from './rules/index.js';
