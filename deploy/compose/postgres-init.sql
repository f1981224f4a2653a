-- The walpurge role for the docker-compose stack, with exactly the privileges docs/deployment.md
-- lists ("PostgreSQL prerequisites"). Runs once, as the superuser that owns the demo tables, after
-- examples/demo/schema.sql. test/deploy/postgres-privileges.int.test.ts runs this file against a
-- real PostgreSQL and proves the role can do everything walpurge does, and nothing needs more.

-- REPLICATION: open a replication connection, create and stream the logical slot.
CREATE ROLE walpurge WITH LOGIN REPLICATION PASSWORD 'walpurge';

-- Reading the tables the rules name: start-up validation of rules against the live schema.
GRANT USAGE ON SCHEMA public TO walpurge;
GRANT SELECT ON public.users, public.products, public.categories TO walpurge;

-- The slot history (database.slotHistoryTable: the slot's identity and last durable LSN), the
-- flusher's tombstone table and, with transport inline, the dead-letter table
-- (database.deadLetterTable) are created on first start: CREATE on the schema.
GRANT CREATE ON SCHEMA public TO walpurge;

-- Publishing a table requires owning it, so the owner creates the publication walpurge reads
-- (database.publication in walpurge.yaml; walpurge never alters an existing one).
CREATE PUBLICATION walpurge_demo FOR TABLE public.users, public.products, public.categories;

-- Write-behind (flusher): version-guarded upserts and deletes into the write-behind tables, its
-- tombstone table (created on first start, CREATE granted above), and the replication origin that
-- marks its own commits so the invalidator keeps read-your-writes.
GRANT INSERT, UPDATE, DELETE ON public.users, public.products, public.categories TO walpurge;
GRANT EXECUTE ON FUNCTION pg_replication_origin_oid(text) TO walpurge;
GRANT EXECUTE ON FUNCTION pg_replication_origin_create(text) TO walpurge;
GRANT EXECUTE ON FUNCTION pg_replication_origin_session_setup(text) TO walpurge;
-- Each flusher transaction stamps its own commit time (see services/flusher/src/origin.ts).
GRANT EXECUTE ON FUNCTION pg_replication_origin_xact_setup(pg_lsn, timestamptz) TO walpurge;
