/**
 * Uploads of local images into the cloud gallery (issue 13). Two steps:
 *
 * 1. `createUpload`: the storage quota is checked (under the per-user lock, counting live images
 *    and every reservation still open) before any byte moves; the server mints the image id, keeps
 *    a reservation, and hands out presigned PUTs for exactly that user's two keys, bound to the
 *    declared length and SHA-256. The same sha256 again returns the existing image, or the same
 *    reservation with fresh URLs — so an uploader that died mid-transfer resumes onto the same keys.
 * 2. `completeUpload`: HEADs both objects; only when both exist with the declared sizes does the
 *    image row appear (and the reservation go). Anything else is a 4xx and records nothing.
 *
 * Reservations that were never completed are swept (objects and rows) once they expire.
 */
import { AppError, isId, newId, PLANS } from '@atelier/common';
import type { CreateUploadBody, ImageId, ImageMetadata, PlanId, UploadResponse } from '@atelier/common';
import type { Pool, Queryable } from '../db/pool.ts';
import { withSystemTx, withUserTx } from '../db/tx.ts';
import { withUrls } from '../db/gallery/gallery-dto.ts';
import { getImage } from '../db/gallery/images-repository.ts';
import { publishEvent } from '../events/publish.ts';
import { imageObjectKey, MAX_PRESIGN_SECONDS, thumbObjectKey, type ThumbMime } from '../storage/keys.ts';
import { presignedPutHeaders, type ObjectStore } from '../storage/object-store.ts';

export interface UploadDeps {
  pool: Pool;
  store: ObjectStore;
  /** Sent in QUOTA_STORAGE_EXCEEDED's details. */
  upgradeUrl: string;
  /** Unit: seconds the presigned PUTs (and so the reservation) stay valid; at most 900. */
  presignSeconds?: number | undefined;
}

export interface StorageUsageRow {
  /** Unit: bytes. */
  used: number;
  /** Unit: bytes. */
  limit: number;
}

/**
 * Bytes the user holds: live images and thumbnails, plus reservations that have not expired
 * (except `excludeUpload`, the one being renewed). Tombstoned images no longer count.
 */
export async function storageUsage(db: Queryable, userId: string, excludeUpload?: string): Promise<StorageUsageRow> {
  const { rows } = await db.query<{ used: string; plan: PlanId | null }>(
    `SELECT (SELECT coalesce(sum(size::bigint + thumb_size), 0) FROM images
              WHERE user_id = $1 AND deleted_at IS NULL)
          + (SELECT coalesce(sum(size::bigint + thumb_size), 0) FROM uploads
              WHERE user_id = $1 AND expires_at > now() AND id IS DISTINCT FROM $2) AS used,
            (SELECT plan FROM effective_plans WHERE user_id = $1) AS plan`,
    [userId, excludeUpload ?? null],
  );
  const r = rows[0]!;
  return { used: Number(r.used), limit: PLANS[r.plan ?? 'free'].storageBytes };
}

interface UploadRow {
  id: string;
  user_id: string;
  sha256: string;
  size: number;
  thumb_sha256: string;
  thumb_size: number;
  thumb_mime: ThumbMime;
  width: number;
  height: number;
  metadata: ImageMetadata;
  expires_at: Date;
}

export function createUploadService(deps: UploadDeps) {
  const { pool, store } = deps;
  const ttl = Math.max(1, Math.min(MAX_PRESIGN_SECONDS, deps.presignSeconds ?? MAX_PRESIGN_SECONDS));

  async function presign(userId: string, row: UploadRow): Promise<UploadResponse> {
    const id = row.id as ImageId;
    const expiresAt = row.expires_at.toISOString();
    // The URLs live no longer than the reservation (S3 counts from the signing time).
    const seconds = Math.max(1, Math.min(ttl, Math.floor((row.expires_at.getTime() - Date.now()) / 1000)));
    const image = { contentType: 'image/png', contentLength: row.size, checksumSha256: row.sha256 };
    const thumb = { contentType: row.thumb_mime, contentLength: row.thumb_size, checksumSha256: row.thumb_sha256 };
    const [imageUrl, thumbUrl] = await Promise.all([
      store.presignPut(imageObjectKey(userId, id), { ...image, expiresInSeconds: seconds }),
      store.presignPut(thumbObjectKey(userId, id, row.thumb_mime), { ...thumb, expiresInSeconds: seconds }),
    ]);
    return {
      status: 'pending',
      id,
      image: { url: imageUrl, method: 'PUT', headers: presignedPutHeaders(image), expiresAt },
      thumb: { url: thumbUrl, method: 'PUT', headers: presignedPutHeaders(thumb), expiresAt },
    };
  }

  async function create(userId: string, body: CreateUploadBody): Promise<UploadResponse> {
    const outcome = await withUserTx(
      pool,
      userId,
      async (tx) => {
        const existing = await tx.query<{ id: string }>(
          'SELECT id FROM images WHERE user_id = $1 AND sha256 = $2 AND deleted_at IS NULL ORDER BY id LIMIT 1',
          [userId, body.sha256],
        );
        if (existing.rows[0]) {
          const rec = await getImage(tx, userId, existing.rows[0].id);
          return { kind: 'exists' as const, rec: rec! };
        }
        const pending = await tx.query<{ id: string }>('SELECT id FROM uploads WHERE user_id = $1 AND sha256 = $2', [
          userId,
          body.sha256,
        ]);
        const reuseId = pending.rows[0]?.id;
        const usage = await storageUsage(tx, userId, reuseId);
        const wanted = body.size + body.thumbSize;
        if (usage.used + wanted > usage.limit)
          throw new AppError('QUOTA_STORAGE_EXCEEDED', 'Storage quota exceeded', {
            details: { used: usage.used, limit: usage.limit, requested: wanted, upgradeUrl: deps.upgradeUrl },
          });
        const values = [
          reuseId ?? newId('img'),
          userId,
          body.sha256,
          body.size,
          body.thumbSha256,
          body.thumbSize,
          body.thumbContentType,
          body.width,
          body.height,
          JSON.stringify(body.metadata),
          ttl,
        ];
        // Asking again renews the reservation in place: same id, so the same keys.
        const { rows } = await tx.query<UploadRow>(
          `INSERT INTO uploads (id, user_id, sha256, size, thumb_sha256, thumb_size, thumb_mime, width, height, metadata, expires_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, now() + make_interval(secs => $11))
           ON CONFLICT (user_id, sha256) DO UPDATE SET
             size = EXCLUDED.size, thumb_sha256 = EXCLUDED.thumb_sha256, thumb_size = EXCLUDED.thumb_size,
             thumb_mime = EXCLUDED.thumb_mime, width = EXCLUDED.width, height = EXCLUDED.height,
             metadata = EXCLUDED.metadata, expires_at = EXCLUDED.expires_at
           RETURNING *`,
          values,
        );
        return { kind: 'pending' as const, row: rows[0]! };
      },
      { lockUser: true },
    );
    if (outcome.kind === 'exists')
      return {
        status: 'exists',
        id: outcome.rec.id,
        image: await withUrls(store, outcome.rec, { url: false, thumbUrl: true }, ttl),
      };
    return presign(userId, outcome.row);
  }

  /** Returns the recorded image. Idempotent: completing a completed upload returns its image. */
  async function complete(userId: string, id: string) {
    if (!isId('img', id)) throw new AppError('NOT_FOUND', 'No such upload');
    const first = await withUserTx(pool, userId, async (tx) => {
      const { rows } = await tx.query<UploadRow>('SELECT * FROM uploads WHERE user_id = $1 AND id = $2', [userId, id]);
      if (rows[0]) return { upload: rows[0] };
      return { image: await getImage(tx, userId, id) };
    });
    if (!first.upload) {
      if (first.image) return withUrls(store, first.image, { url: false, thumbUrl: true }, ttl);
      throw new AppError('NOT_FOUND', 'No such upload');
    }
    const up = first.upload;
    const imageKey = imageObjectKey(userId, id as ImageId);
    const thumbKey = thumbObjectKey(userId, id as ImageId, up.thumb_mime);
    const [imageHead, thumbHead] = await Promise.all([store.head(imageKey), store.head(thumbKey)]);
    const missing = [...(imageHead ? [] : ['image']), ...(thumbHead ? [] : ['thumb'])];
    if (missing.length > 0)
      throw new AppError('UPLOAD_INCOMPLETE', `Objects not uploaded yet: ${missing.join(', ')}`, {
        details: { missing },
      });
    const wrong = [
      ...(imageHead!.size !== up.size ? [{ object: 'image', declared: up.size, actual: imageHead!.size }] : []),
      ...(thumbHead!.size !== up.thumb_size
        ? [{ object: 'thumb', declared: up.thumb_size, actual: thumbHead!.size }]
        : []),
    ];
    if (wrong.length > 0) {
      // The bytes are not what was declared: remove them, keep the reservation for another try.
      await store.delete(wrong.map((w) => (w.object === 'image' ? imageKey : thumbKey)));
      throw new AppError('UPLOAD_SIZE_MISMATCH', 'Uploaded object size differs from the declared size', {
        details: { objects: wrong },
      });
    }
    const rec = await withUserTx(pool, userId, async (tx) => {
      const { rows } = await tx.query<UploadRow>('DELETE FROM uploads WHERE user_id = $1 AND id = $2 RETURNING *', [
        userId,
        id,
      ]);
      const u = rows[0];
      // Completed concurrently by another request: return what it recorded.
      if (!u) return { rec: await getImage(tx, userId, id), surplus: false };
      const inserted = await tx.query(
        `INSERT INTO images (id, user_id, generation_id, batch_index, width, height, metadata, prompt, size, sha256,
                             thumb_mime, thumb_size)
         VALUES ($1, $2, NULL, NULL, $3, $4, $5, $6, $7, $8, $9, $10)
         ON CONFLICT (user_id, sha256) WHERE generation_id IS NULL AND deleted_at IS NULL DO NOTHING`,
        [
          u.id,
          userId,
          u.width,
          u.height,
          JSON.stringify(u.metadata),
          u.metadata.positive_prompt,
          u.size,
          u.sha256,
          u.thumb_mime,
          u.thumb_size,
        ],
      );
      if (!inserted.rowCount) {
        // The same bytes became a live image meanwhile (a restore): that image is the answer, and
        // this reservation's objects are surplus.
        const same = await tx.query<{ id: string }>(
          'SELECT id FROM images WHERE user_id = $1 AND sha256 = $2 AND generation_id IS NULL AND deleted_at IS NULL',
          [userId, u.sha256],
        );
        return { rec: await getImage(tx, userId, same.rows[0]!.id), surplus: true };
      }
      await publishEvent(tx, userId, { type: 'gallery.changed', imageIds: [u.id as ImageId] });
      return { rec: await getImage(tx, userId, id), surplus: false };
    });
    if (rec.surplus) await store.delete([imageKey, thumbKey]);
    if (!rec.rec) throw new AppError('NOT_FOUND', 'No such upload');
    return withUrls(store, rec.rec, { url: false, thumbUrl: true }, ttl);
  }

  return { create, complete };
}
export type UploadService = ReturnType<typeof createUploadService>;

/**
 * Removes reservations that expired more than `graceMs` ago, with whatever objects were put for
 * them (system role; run once per cluster by the workers' pg-boss schedule, worker/periodic.ts;
 * safe if passes overlap: rows are claimed with SKIP LOCKED). Returns how many were swept.
 */
export async function sweepExpiredUploads(opts: {
  pool: Pool;
  store: ObjectStore;
  /** Unit: milliseconds after expiry before a reservation is swept. */
  graceMs?: number;
  now?: () => Date;
  batchSize?: number;
}): Promise<number> {
  const cutoff = new Date((opts.now?.() ?? new Date()).getTime() - (opts.graceMs ?? 0));
  return withSystemTx(opts.pool, async (tx) => {
    const { rows } = await tx.query<{ id: string; user_id: string; thumb_mime: ThumbMime }>(
      `SELECT id, user_id, thumb_mime FROM uploads WHERE expires_at < $1
        ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED`,
      [cutoff, opts.batchSize ?? 500],
    );
    if (rows.length === 0) return 0;
    await opts.store.delete(
      rows.flatMap((r) => [
        imageObjectKey(r.user_id, r.id as ImageId),
        thumbObjectKey(r.user_id, r.id as ImageId, r.thumb_mime),
      ]),
    );
    await tx.query('DELETE FROM uploads WHERE id = ANY($1::text[])', [rows.map((r) => r.id)]);
    return rows.length;
  });
}
