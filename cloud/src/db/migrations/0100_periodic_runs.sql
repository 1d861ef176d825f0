-- Periodic work (issue 14): one row per run of a cluster-wide periodic task (the billing review
-- sweep, …). pg-boss schedules each occurrence once per cluster; this table is the record of what
-- ran, when and with what result — for operators (is the sweep running?) and for the test that
-- proves two API replicas do not both run it. Not user data: no RLS. Written by the system role.
CREATE TABLE periodic_runs (
  job_id      uuid PRIMARY KEY,
  task        text NOT NULL,
  started_at  timestamptz NOT NULL,
  finished_at timestamptz NOT NULL DEFAULT now(),
  ok          boolean NOT NULL,
  -- What the run changed (e.g. users whose plan the sweep moved), or the error's message.
  result      jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX periodic_runs_task_started ON periodic_runs (task, started_at DESC);

GRANT SELECT, INSERT ON periodic_runs TO atelier_system;
-- Old rows go with the retention job an operator runs (docs/OPERATIONS.md); the API never deletes.
