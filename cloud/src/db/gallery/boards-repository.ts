/** The boards table; same rules as images-repository.ts (user id first, tombstones, 404 for others'). */
import { isId, newId } from '@atelier/common';
import type { BoardId } from '@atelier/common';
import type { Queryable } from '../pool.ts';

export interface BoardRecord {
  id: BoardId;
  name: string;
  imageCount: number;
  serverSeq: number;
  createdAt: Date;
  updatedAt: Date;
}

interface BoardRow {
  id: string;
  name: string;
  image_count: number;
  server_seq: number;
  created_at: Date;
  updated_at: Date;
}

const fromRow = (r: BoardRow): BoardRecord => ({
  id: r.id as BoardId,
  name: r.name,
  imageCount: r.image_count,
  serverSeq: r.server_seq,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});

const SELECT = `SELECT b.id, b.name, b.server_seq, b.created_at, b.updated_at,
  (SELECT count(*)::int FROM images i WHERE i.user_id = b.user_id AND i.board_id = b.id AND i.deleted_at IS NULL) AS image_count
  FROM boards b`;

export async function listBoards(db: Queryable, userId: string): Promise<BoardRecord[]> {
  const { rows } = await db.query<BoardRow>(
    `${SELECT} WHERE b.user_id = $1 AND b.deleted_at IS NULL ORDER BY b.name, b.id`,
    [userId],
  );
  return rows.map(fromRow);
}

export async function getBoard(db: Queryable, userId: string, id: string): Promise<BoardRecord | null> {
  if (!isId('brd', id)) return null;
  const { rows } = await db.query<BoardRow>(`${SELECT} WHERE b.user_id = $1 AND b.id = $2 AND b.deleted_at IS NULL`, [
    userId,
    id,
  ]);
  return rows[0] ? fromRow(rows[0]) : null;
}

export async function createBoard(db: Queryable, userId: string, name: string): Promise<BoardRecord> {
  const id = newId('brd');
  await db.query('INSERT INTO boards (id, user_id, name) VALUES ($1, $2, $3)', [id, userId, name]);
  return (await getBoard(db, userId, id))!;
}

export async function renameBoard(
  db: Queryable,
  userId: string,
  id: string,
  name: string,
): Promise<BoardRecord | null> {
  if (!isId('brd', id)) return null;
  const { rowCount } = await db.query(
    'UPDATE boards SET name = $3 WHERE user_id = $1 AND id = $2 AND deleted_at IS NULL',
    [userId, id, name],
  );
  return rowCount ? getBoard(db, userId, id) : null;
}

/**
 * Tombstones a board. Its live images either leave the board (`keep`) or are tombstoned with it
 * (`delete`). Returns the ids of the images that changed, or null when the board does not exist.
 */
export async function deleteBoard(
  db: Queryable,
  userId: string,
  id: string,
  images: 'keep' | 'delete',
): Promise<string[] | null> {
  if (!isId('brd', id)) return null;
  const { rowCount } = await db.query(
    'UPDATE boards SET deleted_at = now() WHERE user_id = $1 AND id = $2 AND deleted_at IS NULL',
    [userId, id],
  );
  if (!rowCount) return null;
  const { rows } = await db.query<{ id: string }>(
    images === 'delete'
      ? 'UPDATE images SET deleted_at = now(), board_id = NULL WHERE user_id = $1 AND board_id = $2 AND deleted_at IS NULL RETURNING id'
      : 'UPDATE images SET board_id = NULL WHERE user_id = $1 AND board_id = $2 AND deleted_at IS NULL RETURNING id',
    [userId, id],
  );
  return rows.map((r) => r.id);
}
