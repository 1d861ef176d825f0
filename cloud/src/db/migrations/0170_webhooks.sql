-- Signed outbound webhooks (issue 16). See docs/decisions/0170-webhook-signing-and-delivery.md
-- and 0171-webhook-ssrf-policy.md.

-- A user's receiving endpoint. The signing secret is stored encrypted (AES-256-GCM under the
-- server key WEBHOOKS_SECRET_KEY, cloud/src/webhooks/secret-box.ts): a database dump alone does
-- not let anyone forge deliveries. The API shows the plain secret once, at creation or rotation.
CREATE TABLE webhook_endpoints (
  id text PRIMARY KEY CHECK (id ~ '^whk_[0-9A-Z]{22}$'),
  user_id text NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  url text NOT NULL CHECK (length(url) <= 2048),
  events text[] NOT NULL CHECK (cardinality(events) > 0),
  secret_encrypted text NOT NULL,
  enabled boolean NOT NULL DEFAULT true,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_endpoints_user ON webhook_endpoints (user_id, id);

-- One row per (event, endpoint) delivery; a replay is a new row pointing at the one it repeats.
-- `payload` is the exact body sent (text, not jsonb: the signature covers these bytes).
CREATE TABLE webhook_deliveries (
  id text PRIMARY KEY CHECK (id ~ '^whd_[0-9A-Z]{22}$'),
  endpoint_id text NOT NULL REFERENCES webhook_endpoints(id) ON DELETE CASCADE,
  user_id text NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  event_id text NOT NULL,
  event_type text NOT NULL,
  payload text NOT NULL,
  status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'retrying', 'succeeded', 'failed')),
  -- Unit: HTTP attempts made so far.
  attempts integer NOT NULL DEFAULT 0,
  last_response_code integer,
  -- Unit: ms of the last attempt, connect to end of the (capped) response body.
  last_latency_ms integer,
  last_error text,
  -- Earliest time of the next attempt (pg-boss adds jitter on top); null when none follows.
  next_attempt_at timestamptz,
  replay_of text REFERENCES webhook_deliveries(id) ON DELETE SET NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, id DESC);
CREATE INDEX webhook_deliveries_user ON webhook_deliveries (user_id, id DESC);

-- usage.threshold fires once per period and threshold: the first transaction that crosses it
-- inserts the row, every later one conflicts and sends nothing.
CREATE TABLE webhook_usage_notices (
  user_id text NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  period_start timestamptz NOT NULL,
  threshold integer NOT NULL CHECK (threshold IN (80, 100)),
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (user_id, period_start, threshold)
);

ALTER TABLE webhook_endpoints ENABLE ROW LEVEL SECURITY;
ALTER TABLE webhook_endpoints FORCE ROW LEVEL SECURITY;
ALTER TABLE webhook_deliveries ENABLE ROW LEVEL SECURITY;
ALTER TABLE webhook_deliveries FORCE ROW LEVEL SECURITY;
ALTER TABLE webhook_usage_notices ENABLE ROW LEVEL SECURITY;
ALTER TABLE webhook_usage_notices FORCE ROW LEVEL SECURITY;
CREATE POLICY webhook_endpoints_self ON webhook_endpoints USING (user_id = current_setting('app.user_id', true))
  WITH CHECK (user_id = current_setting('app.user_id', true));
CREATE POLICY webhook_deliveries_self ON webhook_deliveries USING (user_id = current_setting('app.user_id', true))
  WITH CHECK (user_id = current_setting('app.user_id', true));
CREATE POLICY webhook_usage_notices_self ON webhook_usage_notices
  USING (user_id = current_setting('app.user_id', true))
  WITH CHECK (user_id = current_setting('app.user_id', true));

-- The API manages its user's endpoints and creates deliveries (events in its transactions, tests,
-- replays); the delivery worker and the billing webhook (atelier_system) read endpoints, create
-- deliveries and record attempts. Nobody but the owner deletes a delivery row by hand.
GRANT SELECT, INSERT, UPDATE, DELETE ON webhook_endpoints TO atelier_app;
GRANT SELECT, INSERT ON webhook_deliveries TO atelier_app;
GRANT SELECT, INSERT ON webhook_usage_notices TO atelier_app;
GRANT SELECT, UPDATE (secret_encrypted, updated_at) ON webhook_endpoints TO atelier_system;
GRANT SELECT, INSERT, UPDATE ON webhook_deliveries TO atelier_system;
GRANT SELECT, INSERT ON webhook_usage_notices TO atelier_system;

CREATE TRIGGER webhook_endpoints_owner_live BEFORE INSERT ON webhook_endpoints
  FOR EACH ROW EXECUTE FUNCTION atelier_refuse_deleted_owner();
