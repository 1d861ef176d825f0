-- Least privilege for atelier_app on pg-boss's job rows (issue 14). The API only enqueues jobs
-- (inside the reservation's transaction) and cancels them; the queue-metrics sidecar counts them.
-- None of that needs a job's payload, which names the user and the generation, so the app role
-- may insert rows, read every column but the payloads, and set a job's state — not read `data`
-- or `output`, and not delete. Workers connect as atelier_system and keep full access.
--
-- pg-boss's tables are installed after the migrations (db/migrate.ts, installQueues), and a new
-- queue adds a partition under pgboss.job, so the rules live in a function the migrator calls
-- after every install.
CREATE FUNCTION atelier_restrict_queue_privileges(app_role name) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  t regclass;
  readable text;
BEGIN
  IF to_regclass('pgboss.job') IS NULL THEN
    RETURN;
  END IF;
  SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) INTO readable
    FROM pg_attribute
   WHERE attrelid = 'pgboss.job'::regclass AND attnum > 0 AND NOT attisdropped
     AND attname NOT IN ('data', 'output', 'source_output');
  -- The partitioned table and each partition: pg-boss inserts into the partitions directly.
  FOR t IN
    SELECT 'pgboss.job'::regclass
    UNION ALL
    SELECT inhrelid::regclass FROM pg_inherits WHERE inhparent = 'pgboss.job'::regclass
  LOOP
    EXECUTE format('REVOKE ALL ON %s FROM %I', t, app_role);
    EXECUTE format('GRANT INSERT ON %s TO %I', t, app_role);
    EXECUTE format('GRANT SELECT (%s) ON %s TO %I', readable, t, app_role);
    EXECUTE format('GRANT UPDATE (state, completed_on) ON %s TO %I', t, app_role);
  END LOOP;
END $$;

REVOKE ALL ON FUNCTION atelier_restrict_queue_privileges(name) FROM PUBLIC;
