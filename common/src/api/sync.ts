/**
 * The gallery sync contract (issue 13): uploads of local images through presigned PUTs, and the
 * change feed plus per-field edits that keep every device's gallery the same. The cloud declares
 * these as route schemas; the desktop's sync engine parses every response with them.
 */
import { z } from 'zod';
import { BoardIdSchema, ErrorBody, Image, ImageIdSchema } from '../api.ts';
import { ImageMetadata } from '../metadata.ts';
import { isStorableText, storable } from '../text.ts';

/** Unit: bytes. The largest PNG one upload may declare (a 4096² RGBA PNG stays well under it). */
export const MAX_UPLOAD_BYTES = 100 * 1024 * 1024;
/** Unit: bytes. The largest thumbnail one upload may declare. */
export const MAX_THUMB_BYTES = 2 * 1024 * 1024;
/** Unit: pixels on one side. */
export const MAX_UPLOAD_SIDE = 16_384;

const Sha256Hex = z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lower-case hex digits (SHA-256)');

/** Every string inside the metadata must be storable (Postgres refuses NUL in jsonb). */
function allStorable(v: unknown): boolean {
  if (typeof v === 'string') return isStorableText(v);
  if (Array.isArray(v)) return v.every(allStorable);
  if (v && typeof v === 'object') return Object.entries(v).every(([k, x]) => isStorableText(k) && allStorable(x));
  return true;
}

export const UploadThumbMime = z.enum(['image/webp', 'image/png']);
export type UploadThumbMime = z.infer<typeof UploadThumbMime>;

export const CreateUploadBody = z
  .object({
    /** Hex SHA-256 of the PNG: the same bytes uploaded twice by one user are one image. */
    sha256: Sha256Hex,
    /** Unit: bytes of the PNG. */
    size: z.number().int().min(1).max(MAX_UPLOAD_BYTES),
    /** Hex SHA-256 of the thumbnail. */
    thumbSha256: Sha256Hex,
    /** Unit: bytes of the thumbnail. */
    thumbSize: z.number().int().min(1).max(MAX_THUMB_BYTES),
    contentType: z.literal('image/png'),
    thumbContentType: UploadThumbMime,
    width: z.number().int().min(1).max(MAX_UPLOAD_SIDE),
    height: z.number().int().min(1).max(MAX_UPLOAD_SIDE),
    metadata: ImageMetadata.refine(allStorable, 'metadata must not contain NUL or broken characters'),
  })
  .strict();
export type CreateUploadBody = z.infer<typeof CreateUploadBody>;

/** One presigned PUT: send exactly these headers with the bytes, before `expiresAt`. */
export const PresignedPut = z.object({
  url: z.string().url(),
  method: z.literal('PUT'),
  headers: z.record(z.string(), z.string()),
  expiresAt: z.string().datetime({ offset: true }),
});
export type PresignedPut = z.infer<typeof PresignedPut>;

export const UploadResponse = z.discriminatedUnion('status', [
  /** Put both objects, then POST /v1/uploads/:id/complete. */
  z.object({
    status: z.literal('pending'),
    id: ImageIdSchema,
    image: PresignedPut,
    thumb: PresignedPut,
  }),
  /** This user already has an image with these bytes: nothing to upload. */
  z.object({ status: z.literal('exists'), id: ImageIdSchema, image: Image }),
]);
export type UploadResponse = z.infer<typeof UploadResponse>;

export const UploadIdParams = z.object({ id: ImageIdSchema });

// ── Batches of uploads (one request for many images; decision 0146) ───────────────────────────

/** Unit: images per batch request (reserve or complete). */
export const MAX_UPLOAD_BATCH = 100;

/** Why one item of a batch was not done; the codes and details are those of the single-item routes. */
export const UploadItemError = ErrorBody.shape.error;
export type UploadItemError = z.infer<typeof UploadItemError>;

export const CreateUploadsBody = z.object({ items: z.array(CreateUploadBody).min(1).max(MAX_UPLOAD_BATCH) }).strict();
export type CreateUploadsBody = z.infer<typeof CreateUploadsBody>;

/** One item's answer: as POST /v1/uploads would have answered it, or refused (nothing reserved). */
export const UploadBatchItem = z.discriminatedUnion('status', [
  ...UploadResponse.options,
  z.object({ status: z.literal('refused'), error: UploadItemError }),
]);
export type UploadBatchItem = z.infer<typeof UploadBatchItem>;

/** `results[i]` answers `items[i]`. */
export const CreateUploadsResponse = z.object({ results: z.array(UploadBatchItem) });
export type CreateUploadsResponse = z.infer<typeof CreateUploadsResponse>;

export const CompleteUploadsBody = z.object({ ids: z.array(ImageIdSchema).min(1).max(MAX_UPLOAD_BATCH) }).strict();
export type CompleteUploadsBody = z.infer<typeof CompleteUploadsBody>;

export const CompleteUploadItem = z.discriminatedUnion('status', [
  /** Recorded now, or earlier (completing again is harmless). */
  z.object({ status: z.literal('completed'), id: ImageIdSchema, image: Image }),
  /** Nothing recorded: NOT_FOUND, UPLOAD_INCOMPLETE or UPLOAD_SIZE_MISMATCH, as the single route says. */
  z.object({ status: z.literal('failed'), id: ImageIdSchema, error: UploadItemError }),
]);
export type CompleteUploadItem = z.infer<typeof CompleteUploadItem>;

/** `results[i]` answers `ids[i]`. */
export const CompleteUploadsResponse = z.object({ results: z.array(CompleteUploadItem) });
export type CompleteUploadsResponse = z.infer<typeof CompleteUploadsResponse>;

// ── Change feed ────────────────────────────────────────────────────────────────────────────────

export const SyncChangesQuery = z.object({
  cursor: z
    .string()
    .max(100)
    .regex(/^[A-Za-z0-9_-]*$/, 'cursor is not valid')
    .optional(),
  limit: z.coerce.number().int().min(1).max(500).default(200),
});

/**
 * Per-field versions: a value from the server's change sequence, taken when the field last
 * changed (0 = never changed since the record was created). Higher means later on the server.
 */
export const ImageVersions = z.object({
  starred: z.number().int(),
  boardId: z.number().int(),
  deleted: z.number().int(),
});
export const BoardVersions = z.object({ name: z.number().int(), deleted: z.number().int() });

export const ImageChange = z.object({
  kind: z.literal('image'),
  id: ImageIdSchema,
  /** A tombstone: the image was deleted (it may come back with deleted: false later). */
  deleted: z.boolean(),
  versions: ImageVersions,
  /** The record; `url`/`thumbUrl` (presigned, ≤ 15 min) are present on live images. */
  image: Image,
});
export const BoardChange = z.object({
  kind: z.literal('board'),
  id: BoardIdSchema,
  deleted: z.boolean(),
  name: z.string(),
  versions: BoardVersions,
  updatedAt: z.string().datetime({ offset: true }),
});
export const SyncChange = z.discriminatedUnion('kind', [ImageChange, BoardChange]);
export type SyncChange = z.infer<typeof SyncChange>;

export const SyncChangesPage = z.object({
  items: z.array(SyncChange),
  /** Pass back as `cursor`; never null (an unchanged cursor means nothing new yet). */
  nextCursor: z.string(),
  hasMore: z.boolean(),
});
export type SyncChangesPage = z.infer<typeof SyncChangesPage>;

// ── Edits ──────────────────────────────────────────────────────────────────────────────────────

const base = z.number().int().min(0);
export const SyncEdit = z.discriminatedUnion('field', [
  z
    .object({
      target: z.literal('image'),
      id: ImageIdSchema,
      field: z.literal('starred'),
      value: z.boolean(),
      baseVersion: base,
    })
    .strict(),
  z
    .object({
      target: z.literal('image'),
      id: ImageIdSchema,
      field: z.literal('boardId'),
      value: BoardIdSchema.nullable(),
      baseVersion: base,
    })
    .strict(),
  z
    .object({
      target: z.literal('image'),
      id: ImageIdSchema,
      field: z.literal('deleted'),
      value: z.boolean(),
      baseVersion: base,
    })
    .strict(),
  z
    .object({
      target: z.literal('board'),
      id: BoardIdSchema,
      field: z.literal('name'),
      value: storable(z.string().trim().min(1, 'name must not be empty').max(100), 'name'),
      baseVersion: base,
    })
    .strict(),
  z
    .object({
      target: z.literal('board'),
      id: BoardIdSchema,
      field: z.literal('boardDeleted'),
      value: z.boolean(),
      baseVersion: base,
    })
    .strict(),
  /** Creates a board with the id the device minted (creating it again is a no-op). */
  z
    .object({
      target: z.literal('board'),
      id: BoardIdSchema,
      field: z.literal('create'),
      value: storable(z.string().trim().min(1, 'name must not be empty').max(100), 'name'),
    })
    .strict(),
]);
export type SyncEdit = z.infer<typeof SyncEdit>;

export const SyncEditsBody = z.object({ edits: z.array(SyncEdit).min(1).max(100) }).strict();

export const SyncEditResult = z.object({
  id: z.string(),
  field: z.string(),
  /**
   * applied: this edit is the field's value now. conflict: applied too (last writer wins on the
   * server's clock), but it replaced a change this device had not seen — `overwritten` says what.
   * rejected: nothing changed (`code` says why: NOT_FOUND for an id that is not this user's).
   */
  outcome: z.enum(['applied', 'conflict', 'rejected']),
  version: z.number().int().optional(),
  overwritten: z.object({ value: z.unknown(), version: z.number().int() }).optional(),
  code: z.string().optional(),
});
export type SyncEditResult = z.infer<typeof SyncEditResult>;
export const SyncEditsResponse = z.object({ results: z.array(SyncEditResult) });
