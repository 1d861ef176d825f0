-- Account deletion (issue 14): DELETE /v1/me marks the account, a resumable job removes it.
-- See docs/decisions/0130-account-deletion-reauth-and-order.md.

-- Set in the request that asks for deletion; from then on nothing new may start for the user.
ALTER TABLE users ADD COLUMN deleting_at timestamptz;

-- One row per account ever deleted: the job's progress while it runs, and afterwards the fact
-- that this Cognito sub is gone, so an access token issued before the deletion (valid up to its
-- expiry) cannot bring the user row back. It holds the sub and timestamps, nothing else about the
-- person; anon_id (the id the usage records are moved to) is cleared when the job finishes, so
-- the kept accounting rows cannot be tied back to the sub.
CREATE TABLE account_deletions (
  user_id text PRIMARY KEY,
  -- The next step to run; 'done' when finished. Steps in order: stripe, objects, rows, cognito, finish.
  step text NOT NULL DEFAULT 'stripe'
    CHECK (step IN ('stripe', 'objects', 'rows', 'cognito', 'finish', 'done')),
  anon_id text,
  -- Unit: runs of the job that started on this row (a crash and resume counts two).
  attempts integer NOT NULL DEFAULT 0,
  last_error text,
  requested_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  completed_at timestamptz
);
CREATE INDEX account_deletions_open ON account_deletions (requested_at) WHERE step <> 'done';

ALTER TABLE account_deletions ENABLE ROW LEVEL SECURITY;
ALTER TABLE account_deletions FORCE ROW LEVEL SECURITY;
CREATE POLICY account_deletions_self ON account_deletions USING (user_id = current_setting('app.user_id', true))
  WITH CHECK (user_id = current_setting('app.user_id', true));
-- The API records the request (and reads its own user's row); the job (atelier_system) advances it.
GRANT SELECT, INSERT ON account_deletions TO atelier_app;
GRANT SELECT, UPDATE ON account_deletions TO atelier_system;
GRANT UPDATE (deleting_at) ON users TO atelier_app;

-- Refuse new work for an account being deleted or deleted: whatever path inserts it (API,
-- worker, sync upload), and before the foreign key would fail with an internal error.
-- SQLSTATE AT410 is mapped to ACCOUNT_DELETED (410) by the API's error handler.
-- Runs as the caller: the API sees its own user's row through RLS, the worker (BYPASSRLS) every row.
CREATE FUNCTION atelier_refuse_deleted_owner() RETURNS trigger
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM users WHERE id = NEW.user_id AND deleting_at IS NULL) THEN
    RAISE EXCEPTION 'account % is deleted or being deleted', NEW.user_id USING ERRCODE = 'AT410';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER generations_owner_live BEFORE INSERT ON generations
  FOR EACH ROW EXECUTE FUNCTION atelier_refuse_deleted_owner();
CREATE TRIGGER images_owner_live BEFORE INSERT ON images
  FOR EACH ROW EXECUTE FUNCTION atelier_refuse_deleted_owner();
CREATE TRIGGER boards_owner_live BEFORE INSERT ON boards
  FOR EACH ROW EXECUTE FUNCTION atelier_refuse_deleted_owner();
CREATE TRIGGER usage_periods_owner_live BEFORE INSERT ON usage_periods
  FOR EACH ROW EXECUTE FUNCTION atelier_refuse_deleted_owner();

-- A deleted sub never gets a user row again (first-sight provisioning with an old token). As the
-- caller: the provisioner's transaction is scoped to that sub, so RLS shows it that sub's row.
CREATE FUNCTION atelier_refuse_deleted_user() RETURNS trigger
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM account_deletions WHERE user_id = NEW.id) THEN
    RAISE EXCEPTION 'account % was deleted', NEW.id USING ERRCODE = 'AT410';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER users_not_deleted BEFORE INSERT ON users
  FOR EACH ROW EXECUTE FUNCTION atelier_refuse_deleted_user();

-- The erase functions below run as the owner, whom FORCE ROW LEVEL SECURITY binds too. These
-- policies let the owner (and no runtime role: they cannot become it) reach exactly the two ids
-- an erase function names for the current transaction: the deleted user and its anonymous id.
CREATE FUNCTION atelier_erasing(p_id text) RETURNS boolean
LANGUAGE sql STABLE SET search_path = public, pg_temp AS $$
  SELECT p_id IS NOT NULL
     AND p_id IN (current_setting('app.erase_user', true), current_setting('app.erase_anon', true))
$$;
CREATE POLICY users_erase ON users TO atelier_owner USING (atelier_erasing(id)) WITH CHECK (atelier_erasing(id));
CREATE POLICY usage_periods_erase ON usage_periods TO atelier_owner
  USING (atelier_erasing(user_id)) WITH CHECK (atelier_erasing(user_id));
CREATE POLICY usage_ledger_erase ON usage_ledger TO atelier_owner
  USING (atelier_erasing(user_id)) WITH CHECK (atelier_erasing(user_id));
CREATE POLICY stripe_events_erase ON stripe_events TO atelier_owner
  USING (atelier_erasing(user_id)) WITH CHECK (user_id IS NULL OR atelier_erasing(user_id));
CREATE POLICY images_erase ON images TO atelier_owner USING (atelier_erasing(user_id));
CREATE POLICY boards_erase ON boards TO atelier_owner USING (atelier_erasing(user_id));
CREATE POLICY generations_erase ON generations TO atelier_owner USING (atelier_erasing(user_id));
CREATE POLICY subscriptions_erase ON subscriptions TO atelier_owner USING (atelier_erasing(user_id));

-- The job's "rows" step, in one transaction: usage kept for accounting moves to an anonymous
-- user row (no email, an id with no link to the sub once the job clears anon_id), operator notes
-- (free text) are dropped, and everything else the user owned is deleted. The ledger is
-- append-only for every runtime role, so this runs as the owner; only atelier_system may call it.
-- Idempotent: a second call finds nothing left to move or delete.
CREATE FUNCTION atelier_erase_account_rows(p_user text, p_anon text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
  IF p_anon NOT LIKE 'deleted\_%' THEN
    RAISE EXCEPTION 'anonymous ids start with deleted_';
  END IF;
  PERFORM set_config('app.erase_user', p_user, true), set_config('app.erase_anon', p_anon, true);
  INSERT INTO users (id, email, deleting_at) VALUES (p_anon, NULL, now()) ON CONFLICT (id) DO NOTHING;
  -- deleting_at is set on the anonymous row too, so nothing new can ever be charged to it.
  UPDATE usage_periods SET user_id = p_anon, updated_at = now() WHERE user_id = p_user;
  UPDATE usage_ledger SET user_id = p_anon, note = NULL WHERE user_id = p_user;
  UPDATE stripe_events SET user_id = NULL WHERE user_id = p_user;
  DELETE FROM images WHERE user_id = p_user;
  DELETE FROM boards WHERE user_id = p_user;
  DELETE FROM generations WHERE user_id = p_user;
  DELETE FROM subscriptions WHERE user_id = p_user;
  UPDATE users SET email = NULL, email_checked_at = NULL WHERE id = p_user;
  PERFORM set_config('app.erase_user', '', true), set_config('app.erase_anon', '', true);
END $$;

-- The job's last step: the user row itself (anything else still pointing at it cascades).
CREATE FUNCTION atelier_erase_account_user(p_user text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
  PERFORM set_config('app.erase_user', p_user, true), set_config('app.erase_anon', '', true);
  DELETE FROM users WHERE id = p_user AND deleting_at IS NOT NULL;
  PERFORM set_config('app.erase_user', '', true);
END $$;

REVOKE ALL ON FUNCTION atelier_erase_account_rows(text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION atelier_erase_account_user(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION atelier_erase_account_rows(text, text) TO atelier_system;
GRANT EXECUTE ON FUNCTION atelier_erase_account_user(text) TO atelier_system;
