/**
 * The gallery's use cases for the API: each runs one user transaction (RLS) over the images and
 * boards repositories, sends `gallery.changed` from inside it (delivered on commit), and answers
 * with the DTOs the routes return. Another user's id is the same as no id at all: NOT_FOUND.
 */
import { AppError, type Board, type Image, type ImageId } from '@atelier/common';
import type { Pool } from '../pool.ts';
import { withUserTx } from '../tx.ts';
import { publishEvent } from '../../events/publish.ts';
import type { ObjectStore } from '../../storage/object-store.ts';
import { createBoard, deleteBoard, listBoards, renameBoard } from './boards-repository.ts';
import { toBoard, withUrls } from './gallery-dto.ts';
import { deleteImage, getImage, listImages, updateImage, type ImageListFilter } from './images-repository.ts';

export interface GalleryServiceDeps {
  pool: Pool;
  store: ObjectStore;
  /** Unit: seconds a presigned URL stays valid (at most 900). */
  presignSeconds?: number | undefined;
}

const imageNotFound = () => new AppError('NOT_FOUND', 'No such image');
const boardNotFound = () => new AppError('NOT_FOUND', 'No such board');

export function createGalleryService({ pool, store, presignSeconds }: GalleryServiceDeps) {
  const thumbOnly = { url: false, thumbUrl: true };

  return {
    /** A page of live images, newest first, with thumbnail URLs (the full URL comes with `getImage`). */
    async listImages(userId: string, filter: ImageListFilter): Promise<{ items: Image[]; next: string | null }> {
      const page = await withUserTx(pool, userId, (tx) => listImages(tx, userId, filter));
      const items = await Promise.all(page.items.map((r) => withUrls(store, r, thumbOnly, presignSeconds)));
      return { items, next: page.next };
    },

    async getImage(userId: string, id: string): Promise<Image> {
      const row = await withUserTx(pool, userId, (tx) => getImage(tx, userId, id));
      if (!row) throw imageNotFound();
      return withUrls(store, row, { url: true, thumbUrl: true }, presignSeconds);
    },

    async updateImage(
      userId: string,
      id: string,
      patch: { starred?: boolean | undefined; boardId?: string | null | undefined },
    ): Promise<Image> {
      const row = await withUserTx(pool, userId, async (tx) => {
        const updated = await updateImage(tx, userId, id, patch);
        if (updated) await publishEvent(tx, userId, { type: 'gallery.changed', imageIds: [updated.id] });
        return updated;
      });
      if (!row) throw imageNotFound();
      return withUrls(store, row, thumbOnly, presignSeconds);
    },

    async deleteImage(userId: string, id: string): Promise<void> {
      const deleted = await withUserTx(pool, userId, async (tx) => {
        const ok = await deleteImage(tx, userId, id);
        if (ok) await publishEvent(tx, userId, { type: 'gallery.changed', imageIds: [id as ImageId] });
        return ok;
      });
      if (!deleted) throw imageNotFound();
    },

    async listBoards(userId: string): Promise<Board[]> {
      const boards = await withUserTx(pool, userId, (tx) => listBoards(tx, userId));
      return boards.map(toBoard);
    },

    async createBoard(userId: string, name: string): Promise<Board> {
      const board = await withUserTx(pool, userId, async (tx) => {
        const b = await createBoard(tx, userId, name);
        await publishEvent(tx, userId, { type: 'gallery.changed', imageIds: [] });
        return b;
      });
      return toBoard(board);
    },

    async renameBoard(userId: string, id: string, name: string): Promise<Board> {
      const board = await withUserTx(pool, userId, async (tx) => {
        const b = await renameBoard(tx, userId, id, name);
        if (b) await publishEvent(tx, userId, { type: 'gallery.changed', imageIds: [] });
        return b;
      });
      if (!board) throw boardNotFound();
      return toBoard(board);
    },

    async deleteBoard(userId: string, id: string, images: 'keep' | 'delete'): Promise<void> {
      const changed = await withUserTx(pool, userId, async (tx) => {
        const ids = await deleteBoard(tx, userId, id, images);
        if (ids) await publishEvent(tx, userId, { type: 'gallery.changed', imageIds: ids.slice(0, 100) as ImageId[] });
        return ids;
      });
      if (!changed) throw boardNotFound();
    },
  };
}
export type GalleryService = ReturnType<typeof createGalleryService>;
