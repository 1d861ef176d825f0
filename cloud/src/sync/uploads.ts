/**
 * Uploads of local images into the cloud gallery (issue 13). Two steps:
 *
 * 1. `create`: the storage quota is checked (under the per-user lock, counting live images
 *    and every reservation still open) before any byte moves; the server mints the image id, keeps
 *    a reservation, and hands out presigned PUTs for exactly that user's two keys, bound to the
 *    declared length and SHA-256. The same sha256 again returns the existing image, or the same
 *    reservation with fresh URLs — so an uploader that died mid-transfer resumes onto the same keys.
 * 2. `complete`: HEADs both objects; only when both exist with the declared sizes does the
 *    image row appear (and the reservation go). Anything else is a 4xx and records nothing.
 *
 * Reservations that were never completed are swept (objects and rows) once they expire.
 *
 * Both steps take many images at once (`reserve`, `completeMany`; decision 0146): one request and
 * a few statements for up to 100 images instead of two requests per image. The single-item routes
 * are one item of the same code, so a batch item is answered exactly as its single route would be.
 */
import { AppError, isId, newId, PLANS } from '@atelier/common';
import type {
  CompleteUploadItem,
  CreateUploadBody,
  ErrorCode,
  Image,
  ImageId,
  ImageMetadata,
  PlanId,
  UploadBatchItem,
  UploadItemError,
  UploadResponse,
} from '@atelier/common';
import type { Pool, Queryable } from '../db/pool.ts';
import { withSystemTx, withUserTx } from '../db/tx.ts';
import { withUrls } from '../db/gallery/gallery-dto.ts';
import { getImages } from '../db/gallery/images-repository.ts';
import { publishEvent } from '../events/publish.ts';
import {
  imageObjectKey,
  MAX_PRESIGN_SECONDS,
  thumbObjectKey,
  type ObjectKey,
  type ThumbMime,
} from '../storage/keys.ts';
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
export async function storageUsage(
  db: Queryable,
  userId: string,
  excludeUploads: string | readonly string[] = [],
): Promise<StorageUsageRow> {
  const exclude = typeof excludeUploads === 'string' ? [excludeUploads] : [...excludeUploads];
  const { rows } = await db.query<{ used: string; plan: PlanId | null }>(
    `SELECT (SELECT coalesce(sum(size::bigint + thumb_size), 0) FROM images
              WHERE user_id = $1 AND deleted_at IS NULL)
          + (SELECT coalesce(sum(size::bigint + thumb_size), 0) FROM uploads
              WHERE user_id = $1 AND expires_at > now() AND id <> ALL($2::text[])) AS used,
            (SELECT plan FROM effective_plans WHERE user_id = $1) AS plan`,
    [userId, exclude],
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

const itemError = (e: AppError): UploadItemError => ({
  code: e.code,
  message: e.message,
  ...(e.details ? { details: e.details } : {}),
});

/** Runs `fn` over `items` with at most `limit` in flight (HEADs of a 100-image batch). */
async function eachLimited<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < items.length; i = next++) await fn(items[i]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
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

  type Decision =
    | { kind: 'exists'; id: string }
    | { kind: 'reserve'; id: string; body: CreateUploadBody }
    | { kind: 'refused'; error: AppError };

  /**
   * Reserves many uploads in one transaction under the per-user lock; `results[i]` answers
   * `items[i]`. Per item, in order: a live image with the same sha256 → exists; else the storage
   * quota, counted for the whole batch before any URL is handed out (items past the limit are
   * refused with QUOTA_STORAGE_EXCEEDED and reserve nothing; later smaller items may still fit);
   * else a reservation, renewed in place if one is open for that sha256 (same id, same keys). The
   * same sha256 twice in one batch is one reservation, answered twice.
   */
  async function reserve(userId: string, items: readonly CreateUploadBody[]): Promise<UploadBatchItem[]> {
    const shas = [...new Set(items.map((i) => i.sha256))];
    const decided = await withUserTx(
      pool,
      userId,
      async (tx) => {
        const live = await tx.query<{ id: string; sha256: string }>(
          `SELECT DISTINCT ON (sha256) id, sha256 FROM images
            WHERE user_id = $1 AND sha256 = ANY($2::text[]) AND deleted_at IS NULL ORDER BY sha256, id`,
          [userId, shas],
        );
        const liveBySha = new Map(live.rows.map((r) => [r.sha256, r.id]));
        const open = await tx.query<{ id: string; sha256: string; bytes: string; live: boolean }>(
          `SELECT id, sha256, (size::bigint + thumb_size)::text AS bytes, expires_at > now() AS live
             FROM uploads WHERE user_id = $1 AND sha256 = ANY($2::text[])`,
          [userId, shas],
        );
        const openBySha = new Map(open.rows.map((r) => [r.sha256, r]));
        // The batch's own open reservations are counted as what each item now asks for instead.
        const usage = await storageUsage(
          tx,
          userId,
          open.rows.map((r) => r.id),
        );
        let used = usage.used;
        const bySha = new Map<string, Decision>();
        for (const body of items) {
          if (bySha.has(body.sha256)) continue;
          const existing = liveBySha.get(body.sha256);
          if (existing) {
            bySha.set(body.sha256, { kind: 'exists', id: existing });
            continue;
          }
          const pending = openBySha.get(body.sha256);
          const wanted = body.size + body.thumbSize;
          if (used + wanted > usage.limit) {
            bySha.set(body.sha256, {
              kind: 'refused',
              error: new AppError('QUOTA_STORAGE_EXCEEDED', 'Storage quota exceeded', {
                details: { used, limit: usage.limit, requested: wanted, upgradeUrl: deps.upgradeUrl },
              }),
            });
            // Its earlier reservation (if still open) stands, and so counts.
            if (pending?.live) used += Number(pending.bytes);
            continue;
          }
          used += wanted;
          bySha.set(body.sha256, { kind: 'reserve', id: pending?.id ?? newId('img'), body });
        }
        const toReserve = [...bySha.values()].filter((d) => d.kind === 'reserve');
        const rows = new Map<string, UploadRow>();
        if (toReserve.length > 0) {
          const records = toReserve.map(({ id, body: b }) => ({
            id,
            sha256: b.sha256,
            size: b.size,
            thumb_sha256: b.thumbSha256,
            thumb_size: b.thumbSize,
            thumb_mime: b.thumbContentType,
            width: b.width,
            height: b.height,
            metadata: b.metadata,
          }));
          // Asking again renews a reservation in place: same id, so the same keys.
          const res = await tx.query<UploadRow>(
            `INSERT INTO uploads (id, user_id, sha256, size, thumb_sha256, thumb_size, thumb_mime, width, height, metadata, expires_at)
             SELECT r.id, $1, r.sha256, r.size, r.thumb_sha256, r.thumb_size, r.thumb_mime, r.width, r.height, r.metadata,
                    now() + make_interval(secs => $3)
               FROM jsonb_to_recordset($2::jsonb) AS r(id text, sha256 text, size int, thumb_sha256 text, thumb_size int,
                                                      thumb_mime text, width int, height int, metadata jsonb)
             ON CONFLICT (user_id, sha256) DO UPDATE SET
               size = EXCLUDED.size, thumb_sha256 = EXCLUDED.thumb_sha256, thumb_size = EXCLUDED.thumb_size,
               thumb_mime = EXCLUDED.thumb_mime, width = EXCLUDED.width, height = EXCLUDED.height,
               metadata = EXCLUDED.metadata, expires_at = EXCLUDED.expires_at
             RETURNING *`,
            [userId, JSON.stringify(records), ttl],
          );
          for (const r of res.rows) rows.set(r.sha256, r);
        }
        const existingIds = [...bySha.values()].flatMap((d) => (d.kind === 'exists' ? [d.id] : []));
        const images = await getImages(tx, userId, existingIds);
        return { bySha, rows, images };
      },
      { lockUser: true },
    );
    const answers = new Map<string, Promise<UploadBatchItem>>();
    for (const [sha, d] of decided.bySha) {
      if (d.kind === 'refused') answers.set(sha, Promise.resolve({ status: 'refused', error: itemError(d.error) }));
      else if (d.kind === 'exists') {
        const rec = decided.images.get(d.id)!;
        answers.set(
          sha,
          withUrls(store, rec, { url: false, thumbUrl: true }, ttl).then((image) => ({
            status: 'exists',
            id: rec.id,
            image,
          })),
        );
      } else answers.set(sha, presign(userId, decided.rows.get(sha)!));
    }
    return Promise.all(items.map((i) => answers.get(i.sha256)!));
  }

  /** POST /v1/uploads: one item of `reserve`, a refusal thrown as its error (413 for the quota). */
  async function create(userId: string, body: CreateUploadBody): Promise<UploadResponse> {
    const [out] = await reserve(userId, [body]);
    if (out!.status === 'refused')
      throw new AppError(out!.error.code as ErrorCode, out!.error.message, {
        ...(out!.error.details ? { details: out!.error.details } : {}),
      });
    return out!;
  }

  /**
   * Records many uploaded images; `results[i]` answers `ids[i]`. Each is verified on its own (a
   * HEAD of both objects with the declared sizes): a missing object → UPLOAD_INCOMPLETE, another
   * size → UPLOAD_SIZE_MISMATCH (the wrong object is deleted, the reservation stays), an id that is
   * not one of this user's reservations or images → NOT_FOUND, exactly as for an id that never
   * existed. Nothing is recorded for a failed item; the good ones are recorded in one transaction.
   * Idempotent: completing a completed upload returns its image.
   */
  async function completeMany(userId: string, ids: readonly string[]): Promise<CompleteUploadItem[]> {
    const valid = [...new Set(ids.filter((id) => isId('img', id)))];
    const failures = new Map<string, AppError>();
    const notFound = () => new AppError('NOT_FOUND', 'No such upload');
    const first = await withUserTx(pool, userId, async (tx) => {
      const { rows } = await tx.query<UploadRow>('SELECT * FROM uploads WHERE user_id = $1 AND id = ANY($2::text[])', [
        userId,
        valid,
      ]);
      const pendingIds = new Set(rows.map((r) => r.id));
      return {
        uploads: rows,
        images: await getImages(
          tx,
          userId,
          valid.filter((id) => !pendingIds.has(id)),
        ),
      };
    });
    const recorded = new Map(first.images);
    const verified: UploadRow[] = [];
    const wrongKeys: ObjectKey[] = [];
    await eachLimited(first.uploads, 16, async (up) => {
      const imageKey = imageObjectKey(userId, up.id as ImageId);
      const thumbKey = thumbObjectKey(userId, up.id as ImageId, up.thumb_mime);
      const [imageHead, thumbHead] = await Promise.all([store.head(imageKey), store.head(thumbKey)]);
      const missing = [...(imageHead ? [] : ['image']), ...(thumbHead ? [] : ['thumb'])];
      if (missing.length > 0) {
        failures.set(
          up.id,
          new AppError('UPLOAD_INCOMPLETE', `Objects not uploaded yet: ${missing.join(', ')}`, {
            details: { missing },
          }),
        );
        return;
      }
      const wrong = [
        ...(imageHead!.size !== up.size ? [{ object: 'image', declared: up.size, actual: imageHead!.size }] : []),
        ...(thumbHead!.size !== up.thumb_size
          ? [{ object: 'thumb', declared: up.thumb_size, actual: thumbHead!.size }]
          : []),
      ];
      if (wrong.length > 0) {
        // The bytes are not what was declared: remove them, keep the reservation for another try.
        wrongKeys.push(...wrong.map((w) => (w.object === 'image' ? imageKey : thumbKey)));
        failures.set(
          up.id,
          new AppError('UPLOAD_SIZE_MISMATCH', 'Uploaded object size differs from the declared size', {
            details: { objects: wrong },
          }),
        );
        return;
      }
      verified.push(up);
    });
    if (wrongKeys.length > 0) await store.delete(wrongKeys);
    const surplus: ObjectKey[] = [];
    if (verified.length > 0) {
      const got = await withUserTx(pool, userId, async (tx) => {
        // The reservation goes and the image appears in one statement; a conflict on the
        // one-image-per-bytes index means the same bytes became a live image meanwhile (a restore).
        const { rows } = await tx.query<{ id: string; sha256: string; thumb_mime: ThumbMime; inserted: boolean }>(
          `WITH gone AS (
             DELETE FROM uploads WHERE user_id = $1 AND id = ANY($2::text[]) RETURNING *
           ), added AS (
             INSERT INTO images (id, user_id, generation_id, batch_index, width, height, metadata, prompt, size, sha256,
                                 thumb_mime, thumb_size)
             SELECT id, user_id, NULL, NULL, width, height, metadata, metadata->>'positive_prompt', size, sha256,
                    thumb_mime, thumb_size
               FROM gone
             ON CONFLICT (user_id, sha256) WHERE generation_id IS NULL AND deleted_at IS NULL DO NOTHING
             RETURNING id
           )
           SELECT g.id, g.sha256, g.thumb_mime, (a.id IS NOT NULL) AS inserted FROM gone g LEFT JOIN added a USING (id)`,
          [userId, verified.map((u) => u.id)],
        );
        const inserted = rows.filter((r) => r.inserted).map((r) => r.id);
        const beaten = rows.filter((r) => !r.inserted);
        const answer = new Map<string, string>(rows.map((r) => [r.id, r.id]));
        if (beaten.length > 0) {
          const same = await tx.query<{ id: string; sha256: string }>(
            `SELECT id, sha256 FROM images WHERE user_id = $1 AND sha256 = ANY($2::text[])
               AND generation_id IS NULL AND deleted_at IS NULL`,
            [userId, beaten.map((r) => r.sha256)],
          );
          const bySha = new Map(same.rows.map((r) => [r.sha256, r.id]));
          for (const b of beaten) {
            answer.set(b.id, bySha.get(b.sha256)!);
            surplus.push(
              imageObjectKey(userId, b.id as ImageId),
              thumbObjectKey(userId, b.id as ImageId, b.thumb_mime),
            );
          }
        }
        if (inserted.length > 0)
          await publishEvent(tx, userId, { type: 'gallery.changed', imageIds: inserted as ImageId[] });
        // Verified but no longer reserved: completed concurrently by another request.
        const ids = verified.map((u) => answer.get(u.id) ?? u.id);
        const images = await getImages(tx, userId, ids);
        return new Map(verified.map((u) => [u.id, images.get(answer.get(u.id) ?? u.id)]));
      });
      for (const [id, rec] of got) if (rec) recorded.set(id, rec);
    }
    if (surplus.length > 0) await store.delete(surplus);
    const answers = new Map<string, Promise<CompleteUploadItem>>();
    for (const id of new Set(ids)) {
      const rec = recorded.get(id);
      const failure = failures.get(id) ?? (rec ? null : notFound());
      answers.set(
        id,
        failure
          ? Promise.resolve({ status: 'failed', id: id as ImageId, error: itemError(failure) })
          : withUrls(store, rec!, { url: false, thumbUrl: true }, ttl).then((image) => ({
              status: 'completed',
              id: id as ImageId,
              image,
            })),
      );
    }
    return Promise.all(ids.map((id) => answers.get(id)!));
  }

  /** POST /v1/uploads/:id/complete: one item of `completeMany`, a failure thrown as its error. */
  async function complete(userId: string, id: string): Promise<Image> {
    const [out] = await completeMany(userId, [id]);
    if (out!.status === 'failed')
      throw new AppError(out!.error.code as ErrorCode, out!.error.message, {
        ...(out!.error.details ? { details: out!.error.details } : {}),
      });
    return out!.image;
  }

  return { create, reserve, complete, completeMany };
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
