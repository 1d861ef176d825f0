-- Usage a person can see and operator metrics (issue 16, docs/decisions/0180–0182).

-- Which client submitted a generation, for the usage chart's split (decision 0180): 'desktop' when
-- the Atelier desktop app sent it, 'api' for everything else (scripts, curl, API keys). Display
-- only: quota and limits never read it. Existing rows came from the desktop (no other client existed).
ALTER TABLE generations ADD COLUMN source text NOT NULL DEFAULT 'desktop' CHECK (source IN ('desktop', 'api'));
-- The chart reads one user's generations by day.
CREATE INDEX generations_user_created ON generations (user_id, created_at);
-- The operator report reads every user's generations by day.
CREATE INDEX generations_created ON generations (created_at);

-- Operators (decision 0181). A row here, written only by the admin CLI (atelier_system), is the
-- only thing that makes a user an admin: never a token claim or anything the user can send.
-- RLS: the API role sees at most its own row, so it can ask "am I an admin?" and nothing else.
CREATE TABLE admins (
  user_id text PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
  granted_at timestamptz NOT NULL DEFAULT now(),
  -- Who ran the grant (the operator's shell user or note), for the audit trail.
  granted_by text NOT NULL
);
ALTER TABLE admins ENABLE ROW LEVEL SECURITY;
ALTER TABLE admins FORCE ROW LEVEL SECURITY;
CREATE POLICY admins_self ON admins FOR SELECT USING (user_id = current_setting('app.user_id', true));
GRANT SELECT ON admins TO atelier_app;
GRANT SELECT, INSERT, DELETE ON admins TO atelier_system;

-- Plan history for the Free → Pro conversion figure (decision 0182): one row each time a user's
-- subscription starts or stops granting Pro, written by a trigger so every path that changes a
-- plan (Stripe webhooks, the review sweep, the admin CLI) is recorded without knowing about it.
CREATE TABLE plan_changes (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  user_id text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  -- True when the subscription now grants Pro (plan pro and active or trialing).
  to_pro boolean NOT NULL,
  changed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX plan_changes_changed ON plan_changes (changed_at);
CREATE INDEX plan_changes_user ON plan_changes (user_id, changed_at);
ALTER TABLE plan_changes ENABLE ROW LEVEL SECURITY;
ALTER TABLE plan_changes FORCE ROW LEVEL SECURITY;
CREATE POLICY plan_changes_self ON plan_changes FOR SELECT USING (user_id = current_setting('app.user_id', true));
-- The trigger function below runs as the owner, whom FORCE binds too: it may append, nobody reads through it.
CREATE POLICY plan_changes_record ON plan_changes FOR INSERT TO atelier_owner WITH CHECK (true);
GRANT SELECT ON plan_changes TO atelier_app, atelier_system;

CREATE FUNCTION atelier_record_plan_change() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  was_pro boolean := TG_OP = 'UPDATE' AND OLD.plan = 'pro' AND OLD.status IN ('active', 'trialing');
  is_pro boolean := NEW.plan = 'pro' AND NEW.status IN ('active', 'trialing');
BEGIN
  -- A first Free subscription row is not a change: a user with no row is already Free.
  IF was_pro IS DISTINCT FROM is_pro THEN
    INSERT INTO plan_changes (user_id, to_pro) VALUES (NEW.user_id, is_pro);
  END IF;
  RETURN NULL;
END $$;
REVOKE ALL ON FUNCTION atelier_record_plan_change() FROM PUBLIC;
CREATE TRIGGER subscriptions_plan_history AFTER INSERT OR UPDATE OF plan, status ON subscriptions
  FOR EACH ROW EXECUTE FUNCTION atelier_record_plan_change();
