/**
 * The desktop's SQLite database (better-sqlite3): one file in the user-data folder, WAL so the
 * UI's reads never wait on a write, synchronous=NORMAL (durable across app crashes; a power cut
 * may lose the last transaction but never corrupts), foreign keys on. Schema changes are
 * numbered migrations tracked in `PRAGMA user_version`.
 */
import Database from 'better-sqlite3';

export type Db = Database.Database;

const MIGRATIONS: string[] = [
  `
  CREATE TABLE boards (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    cloud_id TEXT UNIQUE,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    deleted_at TEXT
  );
  CREATE TABLE images (
    id TEXT PRIMARY KEY,
    board_id TEXT REFERENCES boards(id) ON DELETE SET NULL,
    starred INTEGER NOT NULL DEFAULT 0,
    origin TEXT NOT NULL CHECK (origin IN ('local', 'cloud', 'imported')),
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    metadata TEXT,
    prompt TEXT NOT NULL DEFAULT '',
    file_name TEXT NOT NULL UNIQUE,
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    job_id TEXT,
    cloud_id TEXT UNIQUE,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    deleted_at TEXT,
    delete_token TEXT
  );
  CREATE INDEX images_live ON images (deleted_at, id);
  CREATE INDEX images_board ON images (board_id, id);
  CREATE INDEX images_delete_token ON images (delete_token);
  CREATE TABLE jobs (
    id TEXT PRIMARY KEY,
    request TEXT NOT NULL,
    target TEXT NOT NULL CHECK (target IN ('local', 'cloud')),
    reason TEXT NOT NULL,
    state TEXT NOT NULL,
    position INTEGER NOT NULL,
    step INTEGER NOT NULL DEFAULT 0,
    total INTEGER NOT NULL DEFAULT 0,
    seed INTEGER,
    image_ids TEXT NOT NULL DEFAULT '[]',
    error TEXT,
    cloud_generation_id TEXT,
    idempotency_key TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
  );
  CREATE INDEX jobs_state ON jobs (state, position);
  CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
  CREATE TABLE sync_state (key TEXT PRIMARY KEY, value TEXT NOT NULL);
  `,
  // Gallery sync (issue 13): local edits waiting to be sent, and the server's per-field versions
  // this device last saw (the base of its next edit to that field).
  `
  CREATE TABLE sync_outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    target TEXT NOT NULL CHECK (target IN ('image', 'board')),
    local_id TEXT NOT NULL,
    -- The cloud id when the edit was made (a deleted image's row may be purged before it is sent).
    cloud_id TEXT,
    field TEXT NOT NULL,
    value TEXT NOT NULL,
    created_at TEXT NOT NULL
  );
  CREATE TABLE sync_versions (
    cloud_id TEXT NOT NULL,
    field TEXT NOT NULL,
    version INTEGER NOT NULL,
    PRIMARY KEY (cloud_id, field)
  );
  -- The account a row's cloud_id belongs to: another account never sees or edits it through sync.
  ALTER TABLE images ADD COLUMN cloud_account TEXT;
  ALTER TABLE boards ADD COLUMN cloud_account TEXT;
  `,
  // Masks painted over a starting image (issue 15, decision 0155) are rows of \`images\` with role
  // 'mask': a job, Reuse settings and the cloud upload find them by id like any picture, while the
  // gallery, boards, search and sync leave them out.
  `
  ALTER TABLE images ADD COLUMN role TEXT NOT NULL DEFAULT 'image' CHECK (role IN ('image', 'mask'));
  `,
  // The account a queued edit's image belonged to, so an edit of an image purged meanwhile is
  // never sent under another account (issue 13: no request of the new account carries old ids).
  `
  ALTER TABLE sync_outbox ADD COLUMN cloud_account TEXT;
  `,
  // A cloud image synced down with its thumbnail only (issue 13, decision 0148): its full PNG is
  // fetched in the background or on demand. The queue lives here, not in memory, so a restart
  // resumes it; attempts and the last error say why one keeps failing.
  `
  ALTER TABLE images ADD COLUMN full_pending INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE images ADD COLUMN download_attempts INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE images ADD COLUMN download_error TEXT;
  CREATE INDEX images_full_pending ON images (id) WHERE full_pending = 1;
  `,
];

export function openDatabase(file: string): Db {
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('foreign_keys = ON');
  db.pragma('busy_timeout = 5000');
  migrate(db);
  return db;
}

function migrate(db: Db): void {
  const current = db.pragma('user_version', { simple: true }) as number;
  for (let v = current; v < MIGRATIONS.length; v++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[v]!);
      db.pragma(`user_version = ${v + 1}`);
    })();
  }
}

/**
 * `db.prepare` with each SQL text compiled once: better-sqlite3 compiles on every `prepare`, which
 * in the sync engine's per-image paths cost more than running the statements (bench:sync profile).
 */
export function statementCache(db: Db): (sql: string) => Database.Statement {
  const cache = new Map<string, Database.Statement>();
  return (sql) => {
    let s = cache.get(sql);
    if (!s) cache.set(sql, (s = db.prepare(sql)));
    return s;
  };
}
