-- The cloud gallery: boards and images (issue 5). Image bytes live in S3 under
-- users/{user_id}/…; these rows are the system of record for what exists.
-- Every change to a row takes a new server_seq from one shared sequence, so the desktop's sync
-- engine can pull "everything after seq N" (images and boards alike) and apply tombstones
-- (deleted_at) it has not seen yet.

CREATE SEQUENCE gallery_seq AS bigint;

CREATE FUNCTION gallery_touch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.server_seq := nextval('gallery_seq');
  NEW.updated_at := now();
  RETURN NEW;
END $$;

CREATE TABLE boards (
  id text PRIMARY KEY,
  user_id text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  name text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 100),
  server_seq bigint NOT NULL DEFAULT nextval('gallery_seq'),
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  deleted_at timestamptz,
  -- Lets images reference (user_id, board_id): an image can only ever sit on its owner's board.
  UNIQUE (user_id, id)
);
CREATE INDEX boards_user_live ON boards (user_id, id) WHERE deleted_at IS NULL;
CREATE INDEX boards_user_seq ON boards (user_id, server_seq);
CREATE TRIGGER boards_touch BEFORE UPDATE ON boards FOR EACH ROW EXECUTE FUNCTION gallery_touch();

CREATE TABLE images (
  id text PRIMARY KEY,
  user_id text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  -- Null for images uploaded from a desktop's local gallery.
  generation_id text REFERENCES generations (id) ON DELETE SET NULL,
  -- Position in the generation's batch: (generation_id, batch_index) is unique, so a retried job
  -- can never record a second image for the same slot.
  batch_index integer,
  board_id text,
  starred boolean NOT NULL DEFAULT false,
  width integer NOT NULL CHECK (width > 0),
  height integer NOT NULL CHECK (height > 0),
  -- InvokeAI-shaped generation metadata (common/src/metadata.ts), as written into the PNG.
  metadata jsonb NOT NULL,
  -- Copied out of metadata for search.
  prompt text NOT NULL DEFAULT '',
  -- Unit: bytes of the PNG.
  size integer NOT NULL CHECK (size >= 0),
  sha256 text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
  thumb_mime text NOT NULL CHECK (thumb_mime IN ('image/webp', 'image/png')),
  server_seq bigint NOT NULL DEFAULT nextval('gallery_seq'),
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  -- Tombstone: hidden from the API at once; the janitor removes the objects after the retention period.
  deleted_at timestamptz,
  -- When the janitor removed the objects.
  purged_at timestamptz,
  UNIQUE (generation_id, batch_index),
  FOREIGN KEY (user_id, board_id) REFERENCES boards (user_id, id),
  CHECK ((generation_id IS NULL) = (batch_index IS NULL))
);
CREATE INDEX images_user_newest ON images (user_id, id DESC) WHERE deleted_at IS NULL;
CREATE INDEX images_user_board ON images (user_id, board_id, id DESC) WHERE deleted_at IS NULL;
CREATE INDEX images_user_seq ON images (user_id, server_seq);
CREATE INDEX images_to_purge ON images (deleted_at) WHERE deleted_at IS NOT NULL AND purged_at IS NULL;
CREATE TRIGGER images_touch BEFORE UPDATE ON images FOR EACH ROW EXECUTE FUNCTION gallery_touch();

ALTER TABLE boards ENABLE ROW LEVEL SECURITY;
ALTER TABLE boards FORCE ROW LEVEL SECURITY;
CREATE POLICY boards_self ON boards USING (user_id = current_setting('app.user_id', true))
  WITH CHECK (user_id = current_setting('app.user_id', true));

ALTER TABLE images ENABLE ROW LEVEL SECURITY;
ALTER TABLE images FORCE ROW LEVEL SECURITY;
CREATE POLICY images_self ON images USING (user_id = current_setting('app.user_id', true))
  WITH CHECK (user_id = current_setting('app.user_id', true));

-- The API reads and edits a user's gallery through RLS; it never hard-deletes (tombstones only)
-- and does not create images (the worker does; the sync upload flow will grant itself INSERT).
GRANT SELECT, INSERT, UPDATE ON boards TO atelier_app;
GRANT SELECT, UPDATE ON images TO atelier_app;
GRANT USAGE ON SEQUENCE gallery_seq TO atelier_app, atelier_system;
-- The worker records images and the janitor marks them purged.
GRANT SELECT, INSERT, UPDATE ON boards, images TO atelier_system;
