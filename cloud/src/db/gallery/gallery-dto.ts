/** Records → the API's shapes (common/src/api.ts), with presigned URLs from the object store. */
import type { Board, Image } from '@atelier/common';
import { imageObjectKey, thumbObjectKey } from '../../storage/keys.ts';
import type { ObjectStore } from '../../storage/object-store.ts';
import type { BoardRecord } from './boards-repository.ts';
import type { ImageRecord } from './images-repository.ts';

export function toBoard(b: BoardRecord): Board {
  return {
    id: b.id,
    name: b.name,
    imageCount: b.imageCount,
    createdAt: b.createdAt.toISOString(),
    updatedAt: b.updatedAt.toISOString(),
  };
}

export function toImage(r: ImageRecord): Image {
  return {
    id: r.id,
    generationId: r.generationId,
    boardId: r.boardId,
    starred: r.starred,
    width: r.width,
    height: r.height,
    metadata: r.metadata,
    size: r.size,
    sha256: r.sha256,
    createdAt: r.createdAt.toISOString(),
    updatedAt: r.updatedAt.toISOString(),
  };
}

/**
 * Adds presigned GET URLs for the image's own keys. The keys come from the record's owner id, which
 * the caller's query already constrained to the verified user, so a URL can only point into that
 * user's prefix.
 */
export async function withUrls(
  store: ObjectStore,
  r: ImageRecord,
  which: { url: boolean; thumbUrl: boolean },
  expiresInSeconds?: number,
): Promise<Image> {
  const opts = expiresInSeconds === undefined ? undefined : { expiresInSeconds };
  const [url, thumbUrl] = await Promise.all([
    which.url ? store.presignGet(imageObjectKey(r.userId, r.id), opts) : undefined,
    which.thumbUrl ? store.presignGet(thumbObjectKey(r.userId, r.id, r.thumbMime), opts) : undefined,
  ]);
  return {
    ...toImage(r),
    ...(url !== undefined ? { url } : {}),
    ...(thumbUrl !== undefined ? { thumbUrl } : {}),
  };
}
