/**
 * Starting images and masks (issue 15, docs/decisions/0151). Like gallery uploads (0141), the bytes
 * never pass through the API:
 *
 * 1. `create`: the declared type, size and sides are checked before anything is reserved; the
 *    server mints the id and hands out a presigned PUT (≤ 15 min) for exactly
 *    `users/{userId}/inputs/{id}.{png|jpg}`, bound to the declared length and SHA-256. The same
 *    file declared again reuses its input (pending: renewed; ready: `input.status` says so and
 *    the PUT can be skipped), so resending a generation names the same id.
 * 2. `complete`: HEAD (exists, declared size), then the bytes are read back and must hash to the
 *    declared SHA-256, be the declared type, decode, and have the declared sides. Anything else is
 *    a 4xx, the object is removed and the input stays pending (a retry PUTs again).
 * 3. `resolve` (inside the generation's transaction, before the quota is reserved): the ids a
 *    request names must be this user's ready inputs (or live gallery images) of the right purpose,
 *    and a mask must have its starting image's size.
 */
import { createHash } from 'node:crypto';
import { AppError, assertInputLimits, isId, MAX_LIVE_INPUTS, newId } from '@atelier/common';
import type { CloudInput, CreateInputBody, CreateInputResponse, GenerateRequest, ImageId } from '@atelier/common';
import { decodeInputImage, sniffImage } from '@atelier/engine/pipeline/input-image';
import type { Pool, Queryable } from '../db/pool.ts';
import { withSystemTx, withUserTx } from '../db/tx.ts';
import { imageObjectKey, inputObjectKey, MAX_PRESIGN_SECONDS } from '../storage/keys.ts';
import type { ObjectKey } from '../storage/keys.ts';
import { presignedPutHeaders, type ObjectStore } from '../storage/object-store.ts';
import {
  getInput,
  insertInput,
  reuseInput,
  liveImageSize,
  liveInputCount,
  markInputReady,
  takeExpiredInputs,
  toCloudInput,
  type InputRow,
} from './repository.ts';

export interface InputServiceDeps {
  pool: Pool;
  store: ObjectStore;
  /** Unit: seconds the presigned PUT (and so the pending reservation) stays valid; at most 900. */
  presignSeconds?: number | undefined;
  /** Unit: seconds a completed input is kept (INPUT_RETENTION_HOURS). */
  retentionSeconds: number;
}

/**
 * Unit: seconds. A ready input is reused for the same file only while it has at least this long to
 * live, so a generation naming it is not refused because it was swept while queued.
 */
const REUSE_MIN_REMAINING_SECONDS = 24 * 3600;

const KIND_MIME = { png: 'image/png', jpeg: 'image/jpeg' } as const;

export function createInputService(deps: InputServiceDeps) {
  const { pool, store } = deps;
  const ttl = Math.max(1, Math.min(MAX_PRESIGN_SECONDS, deps.presignSeconds ?? MAX_PRESIGN_SECONDS));

  async function create(userId: string, body: CreateInputBody): Promise<CreateInputResponse> {
    // Limits first: a refused input reserves nothing and signs nothing.
    assertInputLimits(body);
    // Under the user's lock, so concurrent requests cannot all pass the count.
    const row = await withUserTx(
      pool,
      userId,
      async (tx) => {
        const reused = await reuseInput(tx, userId, body, ttl, REUSE_MIN_REMAINING_SECONDS);
        if (reused) return reused;
        const live = await liveInputCount(tx, userId);
        if (live >= MAX_LIVE_INPUTS)
          throw new AppError('INPUT_COUNT_EXCEEDED', `${live} inputs held; the limit is ${MAX_LIVE_INPUTS}`, {
            details: { live, limit: MAX_LIVE_INPUTS },
          });
        return insertInput(tx, userId, newId('inp'), body, ttl);
      },
      { lockUser: true },
    );
    const binding = { contentType: row.content_type, contentLength: row.byte_length, checksumSha256: row.sha256 };
    // The URL lives no longer than the reservation (S3 counts from the signing time).
    const seconds = Math.max(1, Math.min(ttl, Math.floor((row.expires_at.getTime() - Date.now()) / 1000)));
    const url = await store.presignPut(inputObjectKey(userId, row.id, row.content_type), {
      ...binding,
      expiresInSeconds: seconds,
    });
    const expiresAt = row.expires_at.toISOString();
    return {
      inputId: row.id,
      uploadUrl: url,
      upload: { url, method: 'PUT', headers: presignedPutHeaders(binding), expiresAt },
      expiresAt,
      input: toCloudInput(row),
    };
  }

  async function get(userId: string, id: string): Promise<CloudInput> {
    const row = isId('inp', id) ? await withUserTx(pool, userId, (tx) => getInput(tx, userId, id)) : null;
    if (!row) throw new AppError('NOT_FOUND', 'No such input');
    return toCloudInput(row);
  }

  /** Checks the uploaded object and marks the input ready. Idempotent once ready. */
  async function complete(userId: string, id: string): Promise<CloudInput> {
    const row = isId('inp', id) ? await withUserTx(pool, userId, (tx) => getInput(tx, userId, id)) : null;
    if (!row) throw new AppError('NOT_FOUND', 'No such input');
    if (row.status === 'ready') return toCloudInput(row);
    const key = inputObjectKey(userId, row.id, row.content_type);
    const head = await store.head(key);
    if (!head)
      throw new AppError('UPLOAD_INCOMPLETE', 'The input has not been uploaded yet', {
        details: { missing: ['input'] },
      });
    if (head.size !== row.byte_length)
      await refuse(key, 'UPLOAD_SIZE_MISMATCH', 'Uploaded object size differs from the declared size', {
        declared: row.byte_length,
        actual: head.size,
      });
    const bytes = await store.get(key);
    if (!bytes)
      throw new AppError('UPLOAD_INCOMPLETE', 'The input has not been uploaded yet', {
        details: { missing: ['input'] },
      });
    await verifyBytes(key, row, bytes);
    const ready = await withUserTx(pool, userId, (tx) => markInputReady(tx, userId, id, deps.retentionSeconds));
    // Completed concurrently: whichever request won recorded it.
    const final = ready ?? (await withUserTx(pool, userId, (tx) => getInput(tx, userId, id)));
    if (!final) throw new AppError('NOT_FOUND', 'No such input');
    return toCloudInput(final);
  }

  /** Throws the refusal after removing the object: a wrong object must not be named later. */
  async function refuse(
    key: ObjectKey,
    code: ConstructorParameters<typeof AppError>[0],
    message: string,
    details: Record<string, unknown>,
    cause?: unknown,
  ): Promise<never> {
    await store.delete([key]);
    throw new AppError(code, message, { details, cause });
  }

  async function verifyBytes(key: ObjectKey, row: InputRow, bytes: Uint8Array): Promise<void> {
    const actualSha = createHash('sha256').update(bytes).digest('hex');
    if (actualSha !== row.sha256)
      await refuse(key, 'INPUT_CHECKSUM_MISMATCH', 'Uploaded bytes do not hash to the declared SHA-256', {
        declared: row.sha256,
        actual: actualSha,
      });
    const kind = sniffImage(bytes);
    if (!kind || KIND_MIME[kind] !== row.content_type)
      await refuse(key, 'INPUT_IMAGE_UNSUPPORTED_TYPE', `the uploaded bytes are not ${row.content_type}`, {
        declared: row.content_type,
        actual: kind ? KIND_MIME[kind] : null,
      });
    let decoded: { width: number; height: number };
    try {
      decoded = decodeInputImage(bytes, row.purpose === 'mask' ? 'mask' : 'initImage', row.id);
    } catch (e) {
      const code = AppError.is(e) ? e.code : 'INPUT_IMAGE_UNREADABLE';
      return refuse(key, code, AppError.is(e) ? e.message : 'the uploaded bytes do not decode', {}, e);
    }
    if (decoded.width !== row.width || decoded.height !== row.height)
      await refuse(
        key,
        'INPUT_DIMENSIONS_MISMATCH',
        `declared ${row.width}×${row.height}, decoded ${decoded.width}×${decoded.height}`,
        {
          declared: { width: row.width, height: row.height },
          actual: { width: decoded.width, height: decoded.height },
        },
      );
  }

  return { create, get, complete };
}
export type InputService = ReturnType<typeof createInputService>;

type Role = 'initImage' | 'mask';
const ROLE_PURPOSE = { initImage: 'init', mask: 'mask' } as const;

const notFound = (field: Role, ref: string) =>
  new AppError('INPUT_IMAGE_NOT_FOUND', `${field} ${ref} is not one of your inputs or gallery images`, {
    details: { field },
  });

/**
 * Checks the starting image and mask a cloud request names, in the caller's (user-scoped)
 * transaction, before anything is reserved. An input id must be the user's, ready, unexpired and
 * uploaded for that role; a gallery image id the user's live image. Another user's id is the same
 * as an unknown one (404 INPUT_IMAGE_NOT_FOUND) so nothing can be learnt about it.
 */
export async function resolveRequestInputs(
  tx: Queryable,
  userId: string,
  body: Pick<GenerateRequest, 'initImage' | 'mask'>,
): Promise<void> {
  const sizes: Partial<Record<Role, { width: number; height: number }>> = {};
  for (const field of ['initImage', 'mask'] as const) {
    const ref = body[field];
    if (ref === undefined) continue;
    if (isId('inp', ref)) {
      const row = await getInput(tx, userId, ref);
      if (!row || row.expires_at.getTime() <= Date.now()) throw notFound(field, ref);
      if (row.status !== 'ready')
        throw new AppError('UPLOAD_INCOMPLETE', `${field} ${ref} has not been completed`, {
          details: { field, missing: ['input'] },
        });
      if (row.purpose !== ROLE_PURPOSE[field])
        throw new AppError('INPUT_PURPOSE_MISMATCH', `${field} ${ref} was uploaded as ${row.purpose}`, {
          details: { field, purpose: row.purpose, expected: ROLE_PURPOSE[field] },
        });
      sizes[field] = { width: row.width, height: row.height };
    } else if (isId('img', ref)) {
      const size = await liveImageSize(tx, userId, ref);
      if (!size) throw notFound(field, ref);
      sizes[field] = size;
    } else {
      // A file name (the CLI's) means nothing to the cloud: the desktop uploads it first.
      throw notFound(field, ref);
    }
  }
  const { initImage: init, mask } = sizes;
  // The engine would refuse it after the quota was taken; the sizes are known now.
  if (init && mask && (init.width !== mask.width || init.height !== mask.height))
    throw new AppError(
      'INPUT_IMAGE_SIZE_MISMATCH',
      `the mask is ${mask.width}×${mask.height} but the starting image is ${init.width}×${init.height}`,
      { details: { mask, initImage: init } },
    );
}

/**
 * The bytes of a starting image or mask for the worker (system role): the generation's owner's
 * input or live gallery image. Gone (swept, deleted) → INPUT_IMAGE_NOT_FOUND, not retryable.
 */
export async function fetchRequestInput(
  deps: { pool: Pool; store: ObjectStore },
  userId: string,
  field: Role,
  ref: string,
): Promise<Uint8Array> {
  let key: ObjectKey | null = null;
  if (isId('inp', ref)) {
    const row = await withSystemTx(deps.pool, (tx) => getInput(tx, userId, ref));
    if (row?.status === 'ready') key = inputObjectKey(userId, row.id, row.content_type);
  } else if (isId('img', ref)) {
    const size = await withSystemTx(deps.pool, (tx) => liveImageSize(tx, userId, ref));
    if (size) key = imageObjectKey(userId, ref as ImageId);
  }
  const bytes = key ? await deps.store.get(key) : null;
  if (!bytes) throw new AppError('INPUT_IMAGE_NOT_FOUND', `${field} ${ref} is gone`, { retryable: false });
  return bytes;
}

/**
 * Removes inputs whose time is up (pending ones whose URL expired, ready ones past retention) and
 * their objects; inputs a queued or running generation names wait. Rows and objects go together:
 * if the bucket cannot be reached the rows stay for the next pass. Returns how many were swept.
 */
export async function sweepExpiredInputs(opts: {
  pool: Pool;
  store: ObjectStore;
  now?: () => Date;
  batchSize?: number;
}): Promise<number> {
  const cutoff = opts.now?.() ?? new Date();
  return withSystemTx(opts.pool, async (tx) => {
    const rows = await takeExpiredInputs(tx, cutoff, opts.batchSize ?? 500);
    if (rows.length > 0) await opts.store.delete(rows.map((r) => inputObjectKey(r.user_id, r.id, r.content_type)));
    return rows.length;
  });
}
