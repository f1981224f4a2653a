export const ROLES = ['all', 'listener', 'invalidator', 'flusher'] as const;
export type Role = (typeof ROLES)[number];
