/**
 * The images table. Every function takes the user id first and runs inside withUserTx (API, RLS
 * enforced) or withSystemTx (worker); the explicit `user_id = $1` keeps the worker's BYPASSRLS
 * connection scoped the same way. A row that is not the user's, or is tombstoned, does not exist.
 */
import { AppError, isId } from '@atelier/common';
import type { BoardId, GenerationId, ImageId, ImageMetadata } from '@atelier/common';
import type { Queryable } from '../pool.ts';
import type { ThumbMime } from '../../storage/keys.ts';

export interface ImageRecord {
  id: ImageId;
  userId: string;
  generationId: GenerationId | null;
  batchIndex: number | null;
  boardId: BoardId | null;
  starred: boolean;
  width: number;
  height: number;
  metadata: ImageMetadata;
  size: number;
  sha256: string;
  thumbMime: ThumbMime;
  serverSeq: number;
  createdAt: Date;
  updatedAt: Date;
  deletedAt: Date | null;
}

/** An images row as selected by COLUMNS; server_seq is a string where a pool does not parse int8. */
export interface ImageRow {
  id: string;
  user_id: string;
  generation_id: string | null;
  batch_index: number | null;
  board_id: string | null;
  starred: boolean;
  width: number;
  height: number;
  metadata: ImageMetadata;
  size: number;
  sha256: string;
  thumb_mime: ThumbMime;
  server_seq: number | string;
  created_at: Date;
  updated_at: Date;
  deleted_at: Date | null;
}

const COLUMNS = `id, user_id, generation_id, batch_index, board_id, starred, width, height, metadata, size, sha256,
  thumb_mime, server_seq, created_at, updated_at, deleted_at`;

export function imageFromRow(r: ImageRow): ImageRecord {
  return {
    id: r.id as ImageId,
    userId: r.user_id,
    generationId: r.generation_id as GenerationId | null,
    batchIndex: r.batch_index,
    boardId: r.board_id as BoardId | null,
    starred: r.starred,
    width: r.width,
    height: r.height,
    metadata: r.metadata,
    size: r.size,
    sha256: r.sha256,
    thumbMime: r.thumb_mime,
    serverSeq: Number(r.server_seq),
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    deletedAt: r.deleted_at,
  };
}

export interface ImageListFilter {
  /** Only images older than this id (the last id of the previous page). */
  before?: string | undefined;
  limit: number;
  /** A board id, or 'none' for images on no board. */
  board?: string | undefined;
  starred?: boolean | undefined;
  /** Case-insensitive substring of the positive prompt. */
  q?: string | undefined;
}

/** Escapes LIKE wildcards so a search for "100%" means the characters, not a pattern. */
function likeLiteral(s: string): string {
  return s.replace(/[\\%_]/g, (c) => `\\${c}`);
}

/** Newest first (ids sort by creation time). */
export async function listImages(
  db: Queryable,
  userId: string,
  f: ImageListFilter,
): Promise<{ items: ImageRecord[]; next: string | null }> {
  const where = ['user_id = $1', 'deleted_at IS NULL'];
  const values: unknown[] = [userId];
  const add = (sql: (p: string) => string, v: unknown) => {
    values.push(v);
    where.push(sql(`$${values.length}`));
  };
  if (f.before !== undefined) add((p) => `id < ${p}`, f.before);
  if (f.board === 'none') where.push('board_id IS NULL');
  else if (f.board !== undefined) add((p) => `board_id = ${p}`, f.board);
  if (f.starred !== undefined) add((p) => `starred = ${p}`, f.starred);
  if (f.q !== undefined && f.q.trim() !== '') add((p) => `prompt ILIKE ${p}`, `%${likeLiteral(f.q.trim())}%`);
  values.push(f.limit + 1);
  const { rows } = await db.query<ImageRow>(
    `SELECT ${COLUMNS} FROM images WHERE ${where.join(' AND ')} ORDER BY id DESC LIMIT $${values.length}`,
    values,
  );
  const items = rows.slice(0, f.limit).map(imageFromRow);
  return { items, next: rows.length > f.limit ? (items[items.length - 1]?.id ?? null) : null };
}

/** A live image of the user's, or null. */
export async function getImage(db: Queryable, userId: string, id: string): Promise<ImageRecord | null> {
  if (!isId('img', id)) return null;
  const { rows } = await db.query<ImageRow>(
    `SELECT ${COLUMNS} FROM images WHERE user_id = $1 AND id = $2 AND deleted_at IS NULL`,
    [userId, id],
  );
  return rows[0] ? imageFromRow(rows[0]) : null;
}

/** The live images among `ids` that are the user's (others are simply absent), by id. */
export async function getImages(
  db: Queryable,
  userId: string,
  ids: readonly string[],
): Promise<Map<string, ImageRecord>> {
  const wanted = ids.filter((id) => isId('img', id));
  if (wanted.length === 0) return new Map();
  const { rows } = await db.query<ImageRow>(
    `SELECT ${COLUMNS} FROM images WHERE user_id = $1 AND id = ANY($2::text[]) AND deleted_at IS NULL`,
    [userId, wanted],
  );
  return new Map(rows.map((r) => [r.id, imageFromRow(r)]));
}

/**
 * Stars or moves an image. A board that is not one of the user's live boards is NOT_FOUND, exactly
 * like a missing image, so another user's board id reveals nothing.
 */
export async function updateImage(
  db: Queryable,
  userId: string,
  id: string,
  patch: { starred?: boolean | undefined; boardId?: string | null | undefined },
): Promise<ImageRecord | null> {
  if (!isId('img', id)) return null;
  if (patch.boardId !== undefined && patch.boardId !== null) {
    const { rowCount } = await db.query(
      'SELECT 1 FROM boards WHERE user_id = $1 AND id = $2 AND deleted_at IS NULL FOR KEY SHARE',
      [userId, patch.boardId],
    );
    if (!rowCount) throw new AppError('NOT_FOUND', 'board not found', { details: { boardId: patch.boardId } });
  }
  const sets: string[] = [];
  const values: unknown[] = [userId, id];
  if (patch.starred !== undefined) {
    values.push(patch.starred);
    sets.push(`starred = $${values.length}`);
  }
  if (patch.boardId !== undefined) {
    values.push(patch.boardId);
    sets.push(`board_id = $${values.length}`);
  }
  if (sets.length === 0) return getImage(db, userId, id);
  const { rows } = await db.query<ImageRow>(
    `UPDATE images SET ${sets.join(', ')} WHERE user_id = $1 AND id = $2 AND deleted_at IS NULL RETURNING ${COLUMNS}`,
    values,
  );
  return rows[0] ? imageFromRow(rows[0]) : null;
}

/** Tombstones an image now; its objects are removed by the janitor after the retention period. */
export async function deleteImage(db: Queryable, userId: string, id: string): Promise<boolean> {
  if (!isId('img', id)) return false;
  const { rowCount } = await db.query(
    'UPDATE images SET deleted_at = now() WHERE user_id = $1 AND id = $2 AND deleted_at IS NULL',
    [userId, id],
  );
  return (rowCount ?? 0) > 0;
}

export interface NewImage {
  id: ImageId;
  generationId: GenerationId | null;
  batchIndex: number | null;
  width: number;
  height: number;
  metadata: ImageMetadata;
  size: number;
  sha256: string;
  thumbMime: ThumbMime;
}

/**
 * Records images (worker, system connection). A slot (generation, batch index) already recorded
 * keeps its first image; the ids actually recorded for the given slots are returned in order.
 */
export async function insertImages(db: Queryable, userId: string, images: readonly NewImage[]): Promise<ImageId[]> {
  const out: ImageId[] = [];
  for (const img of images) {
    const { rows } = await db.query<{ id: string }>(
      `INSERT INTO images (id, user_id, generation_id, batch_index, width, height, metadata, prompt, size, sha256, thumb_mime)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
       ON CONFLICT (generation_id, batch_index) DO NOTHING
       RETURNING id`,
      [
        img.id,
        userId,
        img.generationId,
        img.batchIndex,
        img.width,
        img.height,
        JSON.stringify(img.metadata),
        img.metadata.positive_prompt,
        img.size,
        img.sha256,
        img.thumbMime,
      ],
    );
    if (rows[0]) {
      out.push(rows[0].id as ImageId);
    } else {
      const existing = await db.query<{ id: string }>(
        'SELECT id FROM images WHERE user_id = $1 AND generation_id = $2 AND batch_index = $3',
        [userId, img.generationId, img.batchIndex],
      );
      out.push(existing.rows[0]!.id as ImageId);
    }
  }
  return out;
}

/** The batch slots of a generation that already have an image (a retried job skips them). */
export async function recordedSlots(
  db: Queryable,
  userId: string,
  generationId: string,
): Promise<Map<number, ImageId>> {
  const { rows } = await db.query<{ id: string; batch_index: number }>(
    'SELECT id, batch_index FROM images WHERE user_id = $1 AND generation_id = $2',
    [userId, generationId],
  );
  return new Map(rows.map((r) => [r.batch_index, r.id as ImageId]));
}

export interface PurgeCandidate {
  id: ImageId;
  userId: string;
  thumbMime: ThumbMime;
}

/** Tombstoned images whose retention has passed and whose objects are still in the bucket (janitor). */
export async function purgeCandidates(db: Queryable, olderThan: Date, limit: number): Promise<PurgeCandidate[]> {
  const { rows } = await db.query<{ id: string; user_id: string; thumb_mime: ThumbMime }>(
    `SELECT id, user_id, thumb_mime FROM images
      WHERE deleted_at IS NOT NULL AND purged_at IS NULL AND deleted_at < $1
      ORDER BY deleted_at LIMIT $2 FOR UPDATE SKIP LOCKED`,
    [olderThan, limit],
  );
  return rows.map((r) => ({ id: r.id as ImageId, userId: r.user_id, thumbMime: r.thumb_mime }));
}

export async function markPurged(db: Queryable, ids: readonly string[]): Promise<void> {
  if (ids.length === 0) return;
  await db.query('UPDATE images SET purged_at = now() WHERE id = ANY($1::text[])', [ids]);
}
