-- Core tenancy tables. Runs as role atelier_owner (NOLOGIN): it owns the tables, the API role
-- (atelier_app) only gets DML, so RLS applies to it and it cannot ALTER or DROP anything.
-- FORCE makes the policies apply to the owner too.

CREATE TABLE users (
  id text PRIMARY KEY,                       -- the Cognito sub, as it comes
  email text,
  email_checked_at timestamptz,              -- last successful GetUser; null = fetch again later
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX users_email ON users (lower(email)) WHERE email IS NOT NULL;

CREATE TABLE subscriptions (
  user_id text PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
  plan text NOT NULL DEFAULT 'free' CHECK (plan IN ('free', 'pro')),
  -- Stripe's subscription status vocabulary; 'active' for plans set by an operator.
  status text NOT NULL DEFAULT 'active'
    CHECK (status IN ('active', 'trialing', 'past_due', 'canceled', 'unpaid', 'incomplete', 'incomplete_expired', 'paused')),
  stripe_customer_id text UNIQUE,
  stripe_subscription_id text UNIQUE,
  current_period_start timestamptz,
  current_period_end timestamptz,
  -- Pro stays effective until this time while a payment is retried.
  grace_until timestamptz,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);

-- The plan that counts right now, from the database only (never a token claim).
-- security_invoker: the caller's RLS applies through the view.
CREATE VIEW effective_plans WITH (security_invoker = true) AS
SELECT u.id AS user_id,
       CASE WHEN s.plan = 'pro'
             AND (s.status IN ('active', 'trialing') OR (s.grace_until IS NOT NULL AND s.grace_until > now()))
            THEN 'pro' ELSE 'free' END AS plan,
       s.current_period_start,
       s.current_period_end
FROM users u LEFT JOIN subscriptions s ON s.user_id = u.id;

CREATE TABLE usage_periods (
  user_id text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  period_start timestamptz NOT NULL,
  period_end timestamptz NOT NULL,
  plan text NOT NULL,
  -- Unit: cloud images reserved in the period (refunds subtract).
  used integer NOT NULL DEFAULT 0 CHECK (used >= 0),
  -- Unit: cloud images allowed in the period by the plan at the last reservation.
  "limit" integer NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (user_id, period_start)
);

-- Append-only: every reservation, refund and operator adjustment. Nobody may UPDATE or DELETE it.
CREATE TABLE usage_ledger (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  user_id text NOT NULL REFERENCES users (id),
  generation_id text,
  kind text NOT NULL CHECK (kind IN ('reserve', 'refund', 'adjust')),
  -- Unit: images; positive for reserve, negative for refund.
  amount integer NOT NULL,
  period_start timestamptz NOT NULL,
  note text,
  created_at timestamptz NOT NULL DEFAULT now()
);
-- A generation is reserved once and refunded at most once.
CREATE UNIQUE INDEX usage_ledger_once ON usage_ledger (generation_id, kind) WHERE generation_id IS NOT NULL;
CREATE INDEX usage_ledger_user ON usage_ledger (user_id, period_start);

CREATE TYPE generation_status AS ENUM ('queued', 'running', 'succeeded', 'failed', 'canceled');

CREATE TABLE generations (
  id text PRIMARY KEY,
  user_id text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  status generation_status NOT NULL DEFAULT 'queued',
  params jsonb NOT NULL,
  -- Unit: images in the batch (= quota reserved).
  image_count integer NOT NULL CHECK (image_count > 0),
  priority integer NOT NULL,
  progress_step integer NOT NULL DEFAULT 0,
  progress_total integer NOT NULL,
  error_code text,
  attempts integer NOT NULL DEFAULT 0,
  job_id text,
  idempotency_key text,
  request_hash text,
  -- The usage period charged, so a refund goes back to the same period.
  period_start timestamptz NOT NULL,
  image_ids text[] NOT NULL DEFAULT '{}',
  created_at timestamptz NOT NULL DEFAULT now(),
  started_at timestamptz,
  finished_at timestamptz,
  updated_at timestamptz NOT NULL DEFAULT now(),
  CHECK ((idempotency_key IS NULL) = (request_hash IS NULL))
);
CREATE UNIQUE INDEX generations_idempotency ON generations (user_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX generations_user_newest ON generations (user_id, id DESC);
CREATE INDEX generations_active ON generations (user_id) WHERE status IN ('queued', 'running');

-- Row Level Security: a row is visible only inside withUserTx(pool, row.user_id, …).
-- current_setting(…, true) is NULL when unset, and NULL = x is never true: no user, no rows.
ALTER TABLE users ENABLE ROW LEVEL SECURITY;
ALTER TABLE users FORCE ROW LEVEL SECURITY;
CREATE POLICY users_self ON users USING (id = current_setting('app.user_id', true))
  WITH CHECK (id = current_setting('app.user_id', true));

ALTER TABLE subscriptions ENABLE ROW LEVEL SECURITY;
ALTER TABLE subscriptions FORCE ROW LEVEL SECURITY;
CREATE POLICY subscriptions_self ON subscriptions USING (user_id = current_setting('app.user_id', true))
  WITH CHECK (user_id = current_setting('app.user_id', true));

ALTER TABLE usage_periods ENABLE ROW LEVEL SECURITY;
ALTER TABLE usage_periods FORCE ROW LEVEL SECURITY;
CREATE POLICY usage_periods_self ON usage_periods USING (user_id = current_setting('app.user_id', true))
  WITH CHECK (user_id = current_setting('app.user_id', true));

ALTER TABLE usage_ledger ENABLE ROW LEVEL SECURITY;
ALTER TABLE usage_ledger FORCE ROW LEVEL SECURITY;
CREATE POLICY usage_ledger_read ON usage_ledger FOR SELECT USING (user_id = current_setting('app.user_id', true));
CREATE POLICY usage_ledger_append ON usage_ledger FOR INSERT WITH CHECK (user_id = current_setting('app.user_id', true));

ALTER TABLE generations ENABLE ROW LEVEL SECURITY;
ALTER TABLE generations FORCE ROW LEVEL SECURITY;
CREATE POLICY generations_self ON generations USING (user_id = current_setting('app.user_id', true))
  WITH CHECK (user_id = current_setting('app.user_id', true));

-- The API may read and write rows (through RLS) but owns nothing.
GRANT SELECT, INSERT, UPDATE ON users, subscriptions, usage_periods, generations TO atelier_app;
GRANT SELECT, INSERT ON usage_ledger TO atelier_app;
GRANT SELECT ON effective_plans TO atelier_app, atelier_system;
-- The worker / webhooks / admin CLI: BYPASSRLS, still no DDL, and no history rewriting.
GRANT SELECT, INSERT, UPDATE ON users, subscriptions, usage_periods, generations TO atelier_system;
GRANT SELECT, INSERT ON usage_ledger TO atelier_system;
REVOKE UPDATE, DELETE, TRUNCATE ON usage_ledger FROM PUBLIC, atelier_app, atelier_system;
