/**
 * Starting images and masks in the cloud (issue 15): a client reserves an input, PUTs its bytes
 * to the presigned URL it gets back, completes it (the server checks the bytes), then names the
 * input's id as `initImage` or `mask` in a GenerateRequest. The limits live here so the desktop can
 * refuse a file before it asks, and the cloud checks the same numbers before anything is reserved.
 */
import { z } from 'zod';
import { AppError, type ErrorCode } from '../errors.ts';
import { PresignedPut } from './sync.ts';

/** Unit: bytes. The largest starting image or mask one input may declare. */
export const MAX_INPUT_BYTES = 32 * 1024 * 1024;
/** Unit: pixels on one side. The engine resamples a starting image to the request's size (≤ 2048). */
export const MAX_INPUT_SIDE = 4096;
/**
 * Unit: inputs. The most one user may hold at once (pending or ready, until swept): a cap on the
 * bytes someone can park in the cloud through inputs, which the storage quota does not count.
 */
export const MAX_LIVE_INPUTS = 200;
/** Unit: pixels on one side. A mask is drawn on 8×8 latent blocks; anything smaller is a mistake. */
export const MIN_INPUT_SIDE = 8;

export const INPUT_PURPOSES = ['init', 'mask'] as const;
/** What an input is for: `init` may only be named as `initImage`, `mask` only as `mask`. */
export const InputPurpose = z.enum(INPUT_PURPOSES);
export type InputPurpose = z.infer<typeof InputPurpose>;

export const INPUT_CONTENT_TYPES = ['image/png', 'image/jpeg'] as const;
export type InputContentType = (typeof INPUT_CONTENT_TYPES)[number];

export const InputIdSchema = z.string().regex(/^inp_[0-9A-Z]{22}$/, 'must be an inp_ id');
export const InputIdParams = z.object({ id: InputIdSchema });

/** True when a GenerateRequest reference names an uploaded input (rather than a gallery image). */
export const isInputRef = (ref: string): boolean => InputIdSchema.safeParse(ref).success;

const Sha256Hex = z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lower-case hex digits (SHA-256)');
const wholePositive = (name: string) =>
  z
    .number({ error: `${name} must be a number` })
    .int(`${name} must be a whole number`)
    .positive(`${name} must be > 0`);

/**
 * The body of `POST /v1/inputs`. The schema only checks shapes; the limits (type, bytes, sides) are
 * checked by `checkInputLimits`, so each refusal carries its own stable code rather than a generic
 * VALIDATION_FAILED.
 */
export const CreateInputBody = z
  .object({
    purpose: InputPurpose,
    /** Must be image/png or image/jpeg (INPUT_IMAGE_UNSUPPORTED_TYPE otherwise). */
    contentType: z.string().min(1).max(100),
    /** Unit: bytes of the file, at most MAX_INPUT_BYTES (INPUT_TOO_LARGE). */
    byteLength: wholePositive('byteLength'),
    /** Hex SHA-256 of the file: S3 verifies the PUT's body against it. */
    sha256: Sha256Hex,
    /** Unit: pixels, MIN_INPUT_SIDE to MAX_INPUT_SIDE (INPUT_DIMENSIONS_INVALID). */
    width: wholePositive('width'),
    height: wholePositive('height'),
  })
  .strict();
export type CreateInputBody = z.infer<typeof CreateInputBody>;

/** Why a declared input is refused, or null when it is within the limits. Pure: both sides call it. */
export function inputLimitError(body: Pick<CreateInputBody, 'contentType' | 'byteLength' | 'width' | 'height'>): {
  code: ErrorCode;
  message: string;
  details: Record<string, unknown>;
} | null {
  if (!(INPUT_CONTENT_TYPES as readonly string[]).includes(body.contentType))
    return {
      code: 'INPUT_IMAGE_UNSUPPORTED_TYPE',
      message: `content type ${body.contentType} is not image/png or image/jpeg`,
      details: { contentType: body.contentType, allowed: [...INPUT_CONTENT_TYPES] },
    };
  if (body.byteLength > MAX_INPUT_BYTES)
    return {
      code: 'INPUT_TOO_LARGE',
      message: `${body.byteLength} bytes is more than ${MAX_INPUT_BYTES}`,
      details: { byteLength: body.byteLength, limit: MAX_INPUT_BYTES },
    };
  const sides = [body.width, body.height];
  if (sides.some((s) => s < MIN_INPUT_SIDE || s > MAX_INPUT_SIDE))
    return {
      code: 'INPUT_DIMENSIONS_INVALID',
      message: `${body.width}×${body.height} is outside ${MIN_INPUT_SIDE}–${MAX_INPUT_SIDE} pixels per side`,
      details: { width: body.width, height: body.height, min: MIN_INPUT_SIDE, max: MAX_INPUT_SIDE },
    };
  return null;
}

/** `inputLimitError` as an exception, for the places that throw. */
export function assertInputLimits(body: Pick<CreateInputBody, 'contentType' | 'byteLength' | 'width' | 'height'>) {
  const e = inputLimitError(body);
  if (e) throw new AppError(e.code, e.message, { details: e.details });
}

/** An input as the cloud records it. */
export const CloudInput = z.object({
  id: InputIdSchema,
  purpose: InputPurpose,
  contentType: z.enum(INPUT_CONTENT_TYPES),
  byteLength: z.number().int(),
  sha256: z.string(),
  width: z.number().int(),
  height: z.number().int(),
  /** pending: reserved, bytes not yet checked; ready: completed, may be named in a generation. */
  status: z.enum(['pending', 'ready']),
  createdAt: z.string().datetime({ offset: true }),
  /** When the input and its bytes are removed (pending: when its upload URL expires). */
  expiresAt: z.string().datetime({ offset: true }),
});
export type CloudInput = z.infer<typeof CloudInput>;

/** `POST /v1/inputs`: PUT the file to `upload.url` with exactly `upload.headers`, then complete. */
export const CreateInputResponse = z.object({
  inputId: InputIdSchema,
  /** The presigned PUT (≤ 15 minutes) for exactly `users/{you}/inputs/{inputId}.{png|jpg}`. */
  uploadUrl: z.string().url(),
  upload: PresignedPut,
  expiresAt: z.string().datetime({ offset: true }),
  input: CloudInput,
});
export type CreateInputResponse = z.infer<typeof CreateInputResponse>;
