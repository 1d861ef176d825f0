-- Gallery sync (issue 13): uploads of local images, a commit-order-safe change feed and per-field
-- versions. See docs/decisions/0140-sync-change-feed.md and 0141-sync-uploads.md.

-- ── Change feed ──────────────────────────────────────────────────────────────────────────────
-- server_seq comes from a sequence at statement time, which is not commit order: a transaction
-- can take seq 1, another seq 2 and commit first, and a reader between the two commits that
-- advanced its cursor past 2 would never see 1. So every change also records the id of the
-- transaction that wrote it (xid8, never wraps), and the feed only returns rows whose
-- transaction is older than the reader's snapshot xmin — every such transaction has finished, so
-- nothing can still appear below the cursor (xid, seq).
ALTER TABLE images
  ADD COLUMN server_xid xid8 NOT NULL DEFAULT pg_current_xact_id(),
  -- Unit: bytes of the thumbnail (storage quota counts it with `size`).
  ADD COLUMN thumb_size integer NOT NULL DEFAULT 0 CHECK (thumb_size >= 0),
  -- Per-field versions (values of gallery_seq; 0 = unchanged since created): the server resolves
  -- concurrent edits last-writer-wins per field and tells the device whose change was replaced.
  ADD COLUMN starred_version bigint NOT NULL DEFAULT 0,
  ADD COLUMN board_version bigint NOT NULL DEFAULT 0,
  ADD COLUMN deleted_version bigint NOT NULL DEFAULT 0;

ALTER TABLE boards
  ADD COLUMN server_xid xid8 NOT NULL DEFAULT pg_current_xact_id(),
  ADD COLUMN name_version bigint NOT NULL DEFAULT 0,
  ADD COLUMN deleted_version bigint NOT NULL DEFAULT 0;

CREATE INDEX images_user_feed ON images (user_id, server_xid, server_seq);
CREATE INDEX boards_user_feed ON boards (user_id, server_xid, server_seq);

CREATE OR REPLACE FUNCTION gallery_touch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.server_seq := nextval('gallery_seq');
  NEW.server_xid := pg_current_xact_id();
  NEW.updated_at := now();
  IF TG_TABLE_NAME = 'images' THEN
    IF NEW.starred IS DISTINCT FROM OLD.starred THEN NEW.starred_version := NEW.server_seq; END IF;
    IF NEW.board_id IS DISTINCT FROM OLD.board_id THEN NEW.board_version := NEW.server_seq; END IF;
    IF (NEW.deleted_at IS NULL) IS DISTINCT FROM (OLD.deleted_at IS NULL) THEN
      NEW.deleted_version := NEW.server_seq;
    END IF;
  ELSIF TG_TABLE_NAME = 'boards' THEN
    IF NEW.name IS DISTINCT FROM OLD.name THEN NEW.name_version := NEW.server_seq; END IF;
    IF (NEW.deleted_at IS NULL) IS DISTINCT FROM (OLD.deleted_at IS NULL) THEN
      NEW.deleted_version := NEW.server_seq;
    END IF;
  END IF;
  RETURN NEW;
END $$;

-- The same bytes uploaded twice by one user are one image (a race of two uploads ends in one row).
CREATE UNIQUE INDEX images_user_upload_sha ON images (user_id, sha256)
  WHERE generation_id IS NULL AND deleted_at IS NULL;
CREATE INDEX images_user_sha ON images (user_id, sha256) WHERE deleted_at IS NULL;

-- ── Uploads ──────────────────────────────────────────────────────────────────────────────────
-- A reservation for an upload in progress: the image id the server minted (its keys are
-- users/{user_id}/images/{id}.png and users/{user_id}/thumbs/{id}.{ext}) and what the client
-- declared. The image row exists only after POST /v1/uploads/:id/complete has seen both objects
-- with the declared sizes. Reservations count against the storage quota until they expire; the
-- sweeper then removes the row and whatever objects were put.
CREATE TABLE uploads (
  id text PRIMARY KEY,
  user_id text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  sha256 text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
  -- Unit: bytes.
  size integer NOT NULL CHECK (size > 0),
  thumb_sha256 text NOT NULL CHECK (thumb_sha256 ~ '^[0-9a-f]{64}$'),
  -- Unit: bytes.
  thumb_size integer NOT NULL CHECK (thumb_size > 0),
  thumb_mime text NOT NULL CHECK (thumb_mime IN ('image/webp', 'image/png')),
  width integer NOT NULL CHECK (width > 0),
  height integer NOT NULL CHECK (height > 0),
  metadata jsonb NOT NULL,
  -- When the presigned URLs stop working; asking again with the same sha256 renews them.
  expires_at timestamptz NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (user_id, sha256)
);
CREATE INDEX uploads_expired ON uploads (expires_at);

ALTER TABLE uploads ENABLE ROW LEVEL SECURITY;
ALTER TABLE uploads FORCE ROW LEVEL SECURITY;
CREATE POLICY uploads_self ON uploads USING (user_id = current_setting('app.user_id', true))
  WITH CHECK (user_id = current_setting('app.user_id', true));

GRANT SELECT, INSERT, UPDATE, DELETE ON uploads TO atelier_app;
-- The sweeper (worker, system role) claims expired reservations (FOR UPDATE) and removes them.
GRANT SELECT, UPDATE, DELETE ON uploads TO atelier_system;
-- Completing an upload records the image through RLS on the app role.
GRANT INSERT ON images TO atelier_app;
