/**
 * The integration tests `npm test` repeats on every PostgreSQL major other than the default one:
 * those whose behaviour depends on the server version. The full suite runs on the default (15) only;
 * the rest of it exercises walpurge's own logic, which does not change with the server.
 */
export const PG_VERSION_SUBSET = [
  // Decoding, acknowledgement, standby takeover, setup checks: what pgoutput sends differs by version.
  'services/listener/src/listener.int.test.ts',
  // Row filters and column lists (15+), pgoutput protocol versions, decoding on standbys (16+).
  'services/listener/src/postgres-versions.int.test.ts',
  // Failover slots (17+), and what older servers do with database.failoverSlot.
  'services/listener/src/failover-slot.int.test.ts',
  // wal_status / safe_wal_size, slot invalidation by max_slot_wal_keep_size.
  'services/listener/src/slot-limits.int.test.ts',
  // Rules validation against the catalog: replica identity, publications, generated columns (18+).
  'packages/cli/src/validate.int.test.ts',
  // Commit → purge end to end, through Kafka and embedded.
  'test/e2e/pipeline.int.test.ts',
] as const;
