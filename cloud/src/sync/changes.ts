/**
 * The gallery change feed and per-field edits (issue 13; docs/decisions/0140-sync-change-feed.md).
 *
 * Feed order is (server_xid, server_seq): the writing transaction's id, then the sequence value the
 * row took. A page only holds rows whose transaction is older than the reading statement's
 * snapshot xmin — all of those have finished — so a transaction that took a lower sequence value
 * but commits later can never land below a cursor a reader already holds. The price: the feed
 * waits for the oldest open transaction in the database (normally milliseconds).
 *
 * Edits are last-writer-wins per field on the server's clock (arrival order, serialised by the
 * row lock). Each field carries a version (a gallery_seq value set by the trigger in 0140_sync.sql);
 * an edit names the version it was based on, and when that is older than the field's current
 * version with a different value, the edit still wins but is answered `conflict` with what it
 * replaced — the device whose change was replaced learns it from the feed's versions.
 */
import { AppError, isId } from '@atelier/common';
import type { BoardId, ImageId, SyncChange, SyncChangesPage, SyncEdit, SyncEditResult } from '@atelier/common';
import type { Pool, PoolClient, Queryable } from '../db/pool.ts';
import { withUserTx } from '../db/tx.ts';
import { toImage, withUrls } from '../db/gallery/gallery-dto.ts';
import { imageFromRow, type ImageRow } from '../db/gallery/images-repository.ts';
import { publishEvent } from '../events/publish.ts';
import type { ObjectStore } from '../storage/object-store.ts';

export interface FeedPosition {
  /** xid8 of the writing transaction, as decimal text (it is 64-bit). */
  xid: bigint;
  seq: bigint;
}

export const FEED_START: FeedPosition = { xid: 0n, seq: 0n };

export function encodeFeedCursor(p: FeedPosition): string {
  return Buffer.from(`${p.xid}.${p.seq}`).toString('base64url');
}

export function decodeFeedCursor(cursor: string | undefined): FeedPosition {
  if (!cursor) return FEED_START;
  const m = /^(\d{1,20})\.(\d{1,20})$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
  const pos = m ? { xid: BigInt(m[1]!), seq: BigInt(m[2]!) } : null;
  if (!pos || pos.xid >= 2n ** 63n || pos.seq >= 2n ** 63n)
    throw new AppError('VALIDATION_FAILED', 'cursor is not valid', {
      details: {
        fields: [{ field: 'cursor', message: 'is not valid; start again without a cursor', in: 'querystring' }],
      },
    });
  return pos;
}

interface FeedImageRow extends ImageRow {
  server_seq: string;
  server_xid: string;
  purged_at: Date | null;
  starred_version: string;
  board_version: string;
  deleted_version: string;
}

interface FeedBoardRow {
  id: string;
  name: string;
  server_seq: string;
  server_xid: string;
  updated_at: Date;
  deleted_at: Date | null;
  name_version: string;
  deleted_version: string;
}

type Positioned<T> = T & { pos: FeedPosition };

const cmp = (a: FeedPosition, b: FeedPosition) =>
  a.xid < b.xid ? -1 : a.xid > b.xid ? 1 : a.seq < b.seq ? -1 : a.seq > b.seq ? 1 : 0;

// ORDER BY names the table's columns: a bare `server_xid` would mean the select list's
// `server_xid::text` and sort as text ("1000" before "901"), so a page that spans a power of ten
// took rows past ones it left out, and the cursor skipped them for good (found by bench:sync).
// $5 is the horizon: the xmin of a snapshot taken BEFORE these statements. Every transaction
// below it had finished then, so each later statement sees all of their rows (and none of a
// transaction at or above it): both lists are cut at the same point in commit order.
const IMAGES_SQL = `
  SELECT id, user_id, generation_id, batch_index, board_id, starred, width, height, metadata, size, sha256,
         thumb_mime, server_seq::text, server_xid::text, created_at, updated_at, deleted_at, purged_at,
         starred_version::text, board_version::text, deleted_version::text
    FROM images
   WHERE user_id = $1 AND (server_xid, server_seq) > ($2::text::xid8, $3::bigint)
     AND server_xid < $5::text::xid8
   ORDER BY images.server_xid, images.server_seq
   LIMIT $4`;
const BOARDS_SQL = `
  SELECT id, name, server_seq::text, server_xid::text, updated_at, deleted_at, name_version::text, deleted_version::text
    FROM boards
   WHERE user_id = $1 AND (server_xid, server_seq) > ($2::text::xid8, $3::bigint)
     AND server_xid < $5::text::xid8
   ORDER BY boards.server_xid, boards.server_seq
   LIMIT $4`;

/** One page of the user's changes after `cursor`, oldest first. */
export async function readChanges(
  db: Queryable,
  store: ObjectStore,
  userId: string,
  opts: { cursor?: string | undefined; limit: number; presignSeconds?: number | undefined },
): Promise<SyncChangesPage> {
  const after = decodeFeedCursor(opts.cursor);
  const horizon = (await db.query<{ x: string }>('SELECT pg_snapshot_xmin(pg_current_snapshot())::text AS x')).rows[0]!
    .x;
  const args = [userId, after.xid.toString(), after.seq.toString(), opts.limit + 1, horizon];
  const images = (await db.query<FeedImageRow>(IMAGES_SQL, args)).rows;
  const boards = (await db.query<FeedBoardRow>(BOARDS_SQL, args)).rows;
  const merged: Positioned<{ image?: FeedImageRow; board?: FeedBoardRow }>[] = [
    ...images.map((image) => ({ image, pos: { xid: BigInt(image.server_xid), seq: BigInt(image.server_seq) } })),
    ...boards.map((board) => ({ board, pos: { xid: BigInt(board.server_xid), seq: BigInt(board.server_seq) } })),
  ].sort((a, b) => cmp(a.pos, b.pos));
  // Each list holds up to limit + 1 rows in order, so the first `limit` merged rows are exactly
  // the first `limit` changes after the cursor.
  const safe = merged.slice(0, opts.limit);
  const hasMore = merged.length > opts.limit;
  const items: SyncChange[] = await Promise.all(
    safe.map(async (c): Promise<SyncChange> => {
      if (c.image) {
        const r = c.image;
        const rec = imageFromRow(r);
        const live = r.deleted_at === null;
        const image = live
          ? await withUrls(store, rec, { url: true, thumbUrl: true }, opts.presignSeconds)
          : toImage(rec);
        return {
          kind: 'image',
          id: rec.id,
          deleted: !live,
          versions: {
            starred: Number(r.starred_version),
            boardId: Number(r.board_version),
            deleted: Number(r.deleted_version),
          },
          image,
        };
      }
      const b = c.board!;
      return {
        kind: 'board',
        id: b.id as BoardId,
        deleted: b.deleted_at !== null,
        name: b.name,
        versions: { name: Number(b.name_version), deleted: Number(b.deleted_version) },
        updatedAt: b.updated_at.toISOString(),
      };
    }),
  );
  const last = safe[safe.length - 1]?.pos ?? after;
  return { items, nextCursor: encodeFeedCursor(last), hasMore };
}

// ── Edits ──────────────────────────────────────────────────────────────────────────────────────

const rejected = (e: SyncEdit, code: string): SyncEditResult => ({
  id: e.id,
  field: e.field,
  outcome: 'rejected',
  code,
});

function settled(
  e: SyncEdit & { baseVersion: number },
  before: { value: unknown; version: number },
  version: number,
): SyncEditResult {
  // The edit was made without seeing the field's latest change, and that change set another value.
  const replaced = before.version > e.baseVersion && before.value !== e.value;
  return {
    id: e.id,
    field: e.field,
    outcome: replaced ? 'conflict' : 'applied',
    version,
    ...(replaced ? { overwritten: before } : {}),
  };
}

async function editImage(
  tx: PoolClient,
  userId: string,
  e: Extract<SyncEdit, { target: 'image' }>,
): Promise<SyncEditResult> {
  const { rows } = await tx.query<{
    starred: boolean;
    board_id: string | null;
    deleted: boolean;
    purged: boolean;
    sha256: string;
    generation_id: string | null;
    starred_version: string;
    board_version: string;
    deleted_version: string;
  }>(
    `SELECT starred, board_id, deleted_at IS NOT NULL AS deleted, purged_at IS NOT NULL AS purged, sha256,
            generation_id, starred_version::text, board_version::text, deleted_version::text
       FROM images WHERE user_id = $1 AND id = $2 FOR UPDATE`,
    [userId, e.id],
  );
  const row = rows[0];
  if (!row) return rejected(e, 'NOT_FOUND');
  const column = { starred: 'starred', boardId: 'board_id', deleted: 'deleted' }[e.field];
  const versionColumn = { starred: 'starred_version', boardId: 'board_version', deleted: 'deleted_version' }[e.field];
  const current = e.field === 'starred' ? row.starred : e.field === 'boardId' ? row.board_id : row.deleted;
  const before = { value: current, version: Number(row[versionColumn as 'starred_version']) };
  if (current === e.value) return settled(e, before, before.version);
  if (e.field === 'boardId' && e.value !== null) {
    const board = await tx.query(
      'SELECT 1 FROM boards WHERE user_id = $1 AND id = $2 AND deleted_at IS NULL FOR KEY SHARE',
      [userId, e.value],
    );
    if (!board.rowCount) return rejected(e, 'NOT_FOUND');
  }
  if (e.field === 'deleted' && e.value === false) {
    // Restoring: the bytes must still be there, and the same bytes must not be live twice.
    if (row.purged) return rejected(e, 'NOT_FOUND');
    if (row.generation_id === null) {
      const twin = await tx.query(
        'SELECT 1 FROM images WHERE user_id = $1 AND sha256 = $2 AND generation_id IS NULL AND deleted_at IS NULL',
        [userId, row.sha256],
      );
      if (twin.rowCount) return rejected(e, 'CONFLICT');
    }
  }
  const set = column === 'deleted' ? `deleted_at = ${e.value ? 'now()' : 'NULL'}` : `${column} = $3`;
  const { rows: out } = await tx.query<{ v: string }>(
    `UPDATE images SET ${set} WHERE user_id = $1 AND id = $2 RETURNING ${versionColumn}::text AS v`,
    column === 'deleted' ? [userId, e.id] : [userId, e.id, e.value],
  );
  return settled(e, before, Number(out[0]!.v));
}

async function editBoard(
  tx: PoolClient,
  userId: string,
  e: Extract<SyncEdit, { target: 'board' }>,
): Promise<{ result: SyncEditResult; imageIds: string[] }> {
  if (e.field === 'create') {
    const ins = await tx.query(
      'INSERT INTO boards (id, user_id, name) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING',
      [e.id, userId, e.value],
    );
    if (ins.rowCount) return { result: { id: e.id, field: e.field, outcome: 'applied', version: 0 }, imageIds: [] };
    // Already there: ours (a retried create) is a no-op; anyone else's is a taken id.
    const mine = await tx.query('SELECT 1 FROM boards WHERE user_id = $1 AND id = $2', [userId, e.id]);
    return {
      result: mine.rowCount ? { id: e.id, field: e.field, outcome: 'applied', version: 0 } : rejected(e, 'CONFLICT'),
      imageIds: [],
    };
  }
  const { rows } = await tx.query<{ name: string; deleted: boolean; name_version: string; deleted_version: string }>(
    `SELECT name, deleted_at IS NOT NULL AS deleted, name_version::text, deleted_version::text
       FROM boards WHERE user_id = $1 AND id = $2 FOR UPDATE`,
    [userId, e.id],
  );
  const row = rows[0];
  if (!row) return { result: rejected(e, 'NOT_FOUND'), imageIds: [] };
  if (e.field === 'name') {
    const before = { value: row.name, version: Number(row.name_version) };
    if (row.name === e.value) return { result: settled(e, before, before.version), imageIds: [] };
    const { rows: out } = await tx.query<{ v: string }>(
      'UPDATE boards SET name = $3 WHERE user_id = $1 AND id = $2 RETURNING name_version::text AS v',
      [userId, e.id, e.value],
    );
    return { result: settled(e, before, Number(out[0]!.v)), imageIds: [] };
  }
  const before = { value: row.deleted, version: Number(row.deleted_version) };
  if (row.deleted === e.value) return { result: settled(e, before, before.version), imageIds: [] };
  const { rows: out } = await tx.query<{ v: string }>(
    `UPDATE boards SET deleted_at = ${e.value ? 'now()' : 'NULL'} WHERE user_id = $1 AND id = $2
     RETURNING deleted_version::text AS v`,
    [userId, e.id],
  );
  // A deleted board's images leave it (each such move is a board change on the image).
  const moved = e.value
    ? (
        await tx.query<{ id: string }>(
          'UPDATE images SET board_id = NULL WHERE user_id = $1 AND board_id = $2 RETURNING id',
          [userId, e.id],
        )
      ).rows.map((r) => r.id)
    : [];
  return { result: settled(e, before, Number(out[0]!.v)), imageIds: moved };
}

/** Applies a batch of edits in one transaction, in order; each edit answers for itself. */
export async function applyEdits(pool: Pool, userId: string, edits: readonly SyncEdit[]): Promise<SyncEditResult[]> {
  return withUserTx(pool, userId, async (tx) => {
    const results: SyncEditResult[] = [];
    const touched = new Set<string>();
    for (const e of edits) {
      if (e.target === 'image') {
        if (!isId('img', e.id)) {
          results.push(rejected(e, 'NOT_FOUND'));
          continue;
        }
        const r = await editImage(tx, userId, e);
        if (r.outcome !== 'rejected') touched.add(e.id);
        results.push(r);
      } else {
        const { result, imageIds } = await editBoard(tx, userId, e);
        for (const id of imageIds) touched.add(id);
        results.push(result);
      }
    }
    if (touched.size > 0)
      await publishEvent(tx, userId, { type: 'gallery.changed', imageIds: [...touched].slice(0, 100) as ImageId[] });
    return results;
  });
}
