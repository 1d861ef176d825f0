-- Starting images and masks for cloud generations (issue 15, docs/decisions/0151). A row is a
-- reservation until POST /v1/inputs/:id/complete has checked the object (size by HEAD, bytes
-- decoded with the declared dimensions); then it is `ready` and may be named by the owner's
-- generations. The object lives at users/{user_id}/inputs/{id}.{png|jpg}, a key the server builds.
-- expires_at: for a pending input, when its upload URL stops working; for a ready one, the end of
-- the retention period. The workers' input sweep removes expired rows and their objects.
CREATE TABLE inputs (
  id text PRIMARY KEY CHECK (id ~ '^inp_[0-9A-Z]{22}$'),
  user_id text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  purpose text NOT NULL CHECK (purpose IN ('init', 'mask')),
  content_type text NOT NULL CHECK (content_type IN ('image/png', 'image/jpeg')),
  -- Unit: bytes.
  byte_length integer NOT NULL CHECK (byte_length > 0),
  sha256 text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
  -- Unit: pixels.
  width integer NOT NULL CHECK (width > 0),
  height integer NOT NULL CHECK (height > 0),
  status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'ready')),
  expires_at timestamptz NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  completed_at timestamptz
);
CREATE INDEX inputs_user_sha ON inputs (user_id, sha256);
CREATE INDEX inputs_expired ON inputs (expires_at);

ALTER TABLE inputs ENABLE ROW LEVEL SECURITY;
ALTER TABLE inputs FORCE ROW LEVEL SECURITY;
CREATE POLICY inputs_self ON inputs USING (user_id = current_setting('app.user_id', true))
  WITH CHECK (user_id = current_setting('app.user_id', true));

GRANT SELECT, INSERT, UPDATE, DELETE ON inputs TO atelier_app;
-- The worker reads an input's key and type to fetch it; the sweep claims expired ones (FOR UPDATE
-- needs UPDATE) and deletes them.
GRANT SELECT, UPDATE, DELETE ON inputs TO atelier_system;

-- New work for an account being deleted is refused (0130/0141's trigger: 410 ACCOUNT_DELETED), so
-- no presigned PUT is handed out after the deletion job's objects step.
CREATE TRIGGER inputs_owner_live BEFORE INSERT ON inputs
  FOR EACH ROW EXECUTE FUNCTION atelier_refuse_deleted_owner();
