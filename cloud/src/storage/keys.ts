/**
 * Object keys are built here and nowhere else, from a user id the server verified (the Cognito
 * `sub`) and an id the server minted. No key, prefix or path segment is ever taken from a client,
 * so a request can only ever touch objects under its own user's prefix. See
 * docs/decisions/0020-storage-key-scheme.md.
 */
import { isId } from '@atelier/common';
import type { ImageId } from '@atelier/common';

declare const objectKeyBrand: unique symbol;
/** A key that came out of this module: the only kind of key the ObjectStore accepts. */
export type ObjectKey = string & { readonly [objectKeyBrand]: true };

/** Unit: seconds. The longest a presigned URL is valid for (ARCHITECTURE §3: ≤ 15 minutes). */
export const MAX_PRESIGN_SECONDS = 15 * 60;

export const THUMB_EXTENSIONS = { 'image/webp': 'webp', 'image/png': 'png' } as const;
export type ThumbMime = keyof typeof THUMB_EXTENSIONS;

// A Cognito sub is a UUID; other identity providers use similar opaque tokens. Anything that could
// change the shape of a key ('/', '..', control characters, unicode look-alikes) is refused.
const USER_ID = /^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$/;

function assertUserId(userId: string): void {
  if (!USER_ID.test(userId)) throw new TypeError('storage keys need a verified user id of [A-Za-z0-9_-]');
}

function assertImageId(imageId: string): void {
  if (!isId('img', imageId)) throw new TypeError('storage keys need an img_ id minted by the server');
}

/** `users/{userId}/`: everything one user owns lives under this prefix. */
export function userPrefix(userId: string): string {
  assertUserId(userId);
  return `users/${userId}/`;
}

/** `users/{userId}/images/{imageId}.png` */
export function imageObjectKey(userId: string, imageId: ImageId): ObjectKey {
  assertImageId(imageId);
  return `${userPrefix(userId)}images/${imageId}.png` as ObjectKey;
}

/** `users/{userId}/thumbs/{imageId}.webp` (or `.png` when the engine produced a PNG thumbnail). */
export function thumbObjectKey(userId: string, imageId: ImageId, mime: ThumbMime): ObjectKey {
  assertImageId(imageId);
  const ext = THUMB_EXTENSIONS[mime];
  if (!ext) throw new TypeError(`unsupported thumbnail type ${String(mime)}`);
  return `${userPrefix(userId)}thumbs/${imageId}.${ext}` as ObjectKey;
}

export function isThumbMime(mime: string): mime is ThumbMime {
  return Object.hasOwn(THUMB_EXTENSIONS, mime);
}

/** File extensions of starting images and masks by content type (issue 15). */
export const INPUT_EXTENSIONS = { 'image/png': 'png', 'image/jpeg': 'jpg' } as const;
export type InputMime = keyof typeof INPUT_EXTENSIONS;

/** `users/{userId}/inputs/{inputId}.png` (`.jpg` for a JPEG): a starting image or mask. */
export function inputObjectKey(userId: string, inputId: string, mime: InputMime): ObjectKey {
  if (!isId('inp', inputId)) throw new TypeError('storage keys need an inp_ id minted by the server');
  const ext = INPUT_EXTENSIONS[mime];
  if (!ext) throw new TypeError(`unsupported input type ${String(mime)}`);
  return `${userPrefix(userId)}inputs/${inputId}.${ext}` as ObjectKey;
}
