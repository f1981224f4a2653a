export const ROLES = ['all', 'listener', 'invalidator', 'flusher', 'inspector'] as const;
export type Role = (typeof ROLES)[number];

/**
 * Top-level config sections a role's process never reads. Where one of them needs a variable that is
 * not set in the role's environment, it is left out instead of refused: a listener pod needs no cache
 * or queue Redis URL, a flusher pod no Kafka or CDN credentials. The invalidator reads every section
 * (the flusher's replication origin and version column tell it which commits are write-behind echoes).
 */
export const SECTIONS_NOT_READ_BY: Record<Role, ReadonlySet<string>> = {
  all: new Set(),
  listener: new Set(['redis', 'cdn', 'flusher']),
  invalidator: new Set(),
  flusher: new Set(['kafka', 'cdn']),
  // The observer reads the change topic, the cache and (to confirm) the database; never a CDN.
  inspector: new Set(['cdn']),
};
