-- Billing (issue 6): webhook dedupe, and what the plan rules remember between events.

-- Every Stripe event the webhook has taken. The primary key is the dedupe: the event id is
-- inserted in the same transaction as the event's effect, so a redelivery (or a concurrent
-- duplicate, which waits on this key) finds the row and changes nothing.
CREATE TABLE stripe_events (
  id text PRIMARY KEY,                                  -- evt_…
  type text NOT NULL,
  stripe_created_at timestamptz NOT NULL,               -- Stripe's clock, not ours
  livemode boolean NOT NULL,
  user_id text REFERENCES users (id) ON DELETE SET NULL,
  subscription_id text,
  -- received → applied | unchanged; ignored = a type or object that moves no plan;
  -- unknown_customer = no Atelier user owns the customer (logged for an operator).
  outcome text NOT NULL DEFAULT 'received'
    CHECK (outcome IN ('received', 'applied', 'unchanged', 'ignored', 'unknown_customer')),
  plan text CHECK (plan IN ('free', 'pro')),            -- the user's plan after the event
  processed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX stripe_events_user ON stripe_events (user_id, processed_at) WHERE user_id IS NOT NULL;

-- Not tenant data a user may read: only the webhook (atelier_system, BYPASSRLS) touches it.
ALTER TABLE stripe_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE stripe_events FORCE ROW LEVEL SECURITY;
GRANT SELECT, INSERT ON stripe_events TO atelier_system;
GRANT UPDATE (outcome, plan, user_id) ON stripe_events TO atelier_system;

-- The rules' memory on the user's subscription row (cloud-core's table, extended here).
ALTER TABLE subscriptions
  -- First moment the subscription was seen past_due; grace_until = this + BILLING_GRACE_DAYS.
  ADD COLUMN past_due_since timestamptz,
  ADD COLUMN cancel_at_period_end boolean NOT NULL DEFAULT false,
  ADD COLUMN cancel_at timestamptz,
  ADD COLUMN stripe_price_id text,
  -- When the plan changes by the clock alone (grace ends, scheduled cancellation takes effect):
  -- the billing sweeper re-reads the subscription then.
  ADD COLUMN review_at timestamptz,
  ADD COLUMN stripe_synced_at timestamptz;
CREATE INDEX subscriptions_review_due ON subscriptions (review_at) WHERE review_at IS NOT NULL;
