-- API keys (issue 16). See docs/decisions/0160-api-key-format-and-storage.md and
-- 0161-api-key-revocation-across-replicas.md.
--
-- Only a SHA-256 of the whole key is stored: the key carries a 256-bit random secret, so a fast
-- hash is enough (nothing to brute-force) and a lookup is one index probe. `prefix` is the part
-- shown to the user to tell keys apart; it is not secret and not unique.
CREATE TABLE api_keys (
  id text PRIMARY KEY CHECK (id ~ '^key_[0-9A-Z]{22}$'),
  user_id text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  name text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
  prefix text NOT NULL CHECK (prefix ~ '^atl_[0-9A-Za-z]{8}$'),
  hash bytea NOT NULL UNIQUE CHECK (length(hash) = 32),
  scopes text[] NOT NULL CHECK (
    cardinality(scopes) >= 1 AND scopes <@ ARRAY['generate', 'gallery:read', 'gallery:write', 'account:read']
  ),
  created_at timestamptz NOT NULL DEFAULT now(),
  -- Throttled: written at most about once a minute per key and API process.
  last_used_at timestamptz,
  -- Revoked keys are kept (the list can say when a key stopped working); they never authenticate.
  revoked_at timestamptz
);
CREATE INDEX api_keys_user ON api_keys (user_id, created_at) WHERE revoked_at IS NULL;

ALTER TABLE api_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE api_keys FORCE ROW LEVEL SECURITY;
CREATE POLICY api_keys_self ON api_keys USING (user_id = current_setting('app.user_id', true))
  WITH CHECK (user_id = current_setting('app.user_id', true));

-- The API manages a user's keys through RLS. No DELETE: revoking sets revoked_at; the rows go
-- with the account (ON DELETE CASCADE).
GRANT SELECT, INSERT ON api_keys TO atelier_app;
GRANT UPDATE (last_used_at, revoked_at) ON api_keys TO atelier_app;
GRANT SELECT ON api_keys TO atelier_system;

-- An account being deleted cannot mint keys (same guard as every other new row; AT410 → 410).
CREATE TRIGGER api_keys_owner_live BEFORE INSERT ON api_keys
  FOR EACH ROW EXECUTE FUNCTION atelier_refuse_deleted_owner();

-- ── Lookup before the user is known ──────────────────────────────────────────────────────────
-- A request with a key has no app.user_id yet, so RLS shows the API no key at all. Rather than
-- give the API the BYPASSRLS system role, one SECURITY DEFINER function answers exactly one
-- question: "which live key has this hash, and whose is it?". It runs as the owner, whom FORCE
-- binds too, so the owner may read a key row only while the function has set the hash it asks
-- for: nothing else about api_keys is reachable through it. It also says whether the account is
-- being deleted (read through users' own policy with the key's user set for that one statement).
CREATE POLICY api_keys_lookup ON api_keys FOR SELECT TO atelier_owner
  USING (hash = decode(nullif(current_setting('app.api_key_hash', true), ''), 'hex'));

CREATE FUNCTION atelier_api_key_lookup(p_hash bytea)
RETURNS TABLE (id text, user_id text, scopes text[], revoked boolean, deleting boolean)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  k api_keys%ROWTYPE;
  prev_user text := current_setting('app.user_id', true);
  gone boolean;
  hit boolean;
BEGIN
  PERFORM set_config('app.api_key_hash', encode(p_hash, 'hex'), true);
  SELECT * INTO k FROM api_keys WHERE hash = p_hash;
  hit := FOUND; -- before the next PERFORM, which sets FOUND again
  PERFORM set_config('app.api_key_hash', '', true);
  IF NOT hit THEN
    RETURN;
  END IF;
  PERFORM set_config('app.user_id', k.user_id, true);
  SELECT u.deleting_at IS NOT NULL INTO gone FROM users u WHERE u.id = k.user_id;
  PERFORM set_config('app.user_id', coalesce(prev_user, ''), true);
  RETURN QUERY SELECT k.id, k.user_id, k.scopes, k.revoked_at IS NOT NULL, coalesce(gone, true);
END $$;
REVOKE ALL ON FUNCTION atelier_api_key_lookup(bytea) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION atelier_api_key_lookup(bytea) TO atelier_app;

-- ── Revocation reaches every API process ─────────────────────────────────────────────────────
-- Each API process caches recent lookups; whatever ends a key (revoke through the API, an
-- operator's UPDATE, the account's rows cascading away) notifies on commit, and every process
-- drops that key from its cache before its next request (decision 0161).
CREATE FUNCTION atelier_api_key_ended() RETURNS trigger
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
BEGIN
  PERFORM pg_notify('atelier_api_keys', OLD.id);
  RETURN NULL;
END $$;
CREATE TRIGGER api_keys_revoked AFTER UPDATE OF revoked_at ON api_keys
  FOR EACH ROW WHEN (NEW.revoked_at IS NOT NULL AND OLD.revoked_at IS NULL)
  EXECUTE FUNCTION atelier_api_key_ended();
CREATE TRIGGER api_keys_deleted AFTER DELETE ON api_keys
  FOR EACH ROW EXECUTE FUNCTION atelier_api_key_ended();
