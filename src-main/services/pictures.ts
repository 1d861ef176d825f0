/**
 * Pictures a person brings to start from, and the masks they paint over them (issue 15). Bytes
 * arrive from the renderer (a drop, the file picker, the mask editor's export), never a path, so
 * the renderer cannot make the main process read a file of its choosing. Every picture is checked
 * by its first bytes (not its name), its size before decoding, and a full decode before anything
 * is written; a refused picture writes nothing.
 */
import { createHash } from 'node:crypto';
import { AppError, MAX_INPUT_SIDE, MAX_PICTURE_BYTES, MIN_INPUT_SIDE, type LibraryImage } from '@atelier/common';
import { decodeInputImage, encodePng, sniffImage, type RawImage } from '@atelier/engine';
import type { Library } from './library.ts';

export interface PicturesOptions {
  library: Pick<Library, 'get' | 'liveBySha' | 'saveImage'>;
}

export type Pictures = ReturnType<typeof createPictures>;

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

function tooLarge(bytes: Uint8Array, what: string): AppError | null {
  if (bytes.byteLength <= MAX_PICTURE_BYTES) return null;
  const mb = (n: number) => `${Math.round(n / 1024 / 102.4) / 10} MB`;
  return new AppError('INPUT_TOO_LARGE', `${what} is ${bytes.byteLength} bytes`, {
    userMessage: `${what} is ${mb(bytes.byteLength)}; pictures up to ${mb(MAX_PICTURE_BYTES)} can be used. Save a smaller copy and try again.`,
  });
}

/** Drops alpha: a JPEG has none, and an RGB PNG is a quarter smaller. */
function rgb(img: RawImage): RawImage {
  if (img.channels === 3) return img;
  const out = new Uint8Array(img.width * img.height * 3);
  for (let p = 0; p < img.width * img.height; p++) out.set(img.data.subarray(p * 4, p * 4 + 3), p * 3);
  return { width: img.width, height: img.height, channels: 3, data: out };
}

export function createPictures({ library }: PicturesOptions) {
  /**
   * A dropped or picked PNG/JPEG as a gallery picture. A PNG is kept byte for byte (its metadata
   * too); a JPEG is decoded once here and stored as PNG, so the library, the engine and the cloud
   * upload all see the same pixels.
   */
  async function importPicture(bytes: Uint8Array, name: string): Promise<LibraryImage> {
    const big = tooLarge(bytes, name);
    if (big) throw big;
    // Throws INPUT_IMAGE_UNSUPPORTED_TYPE (not PNG/JPEG by its bytes) or INPUT_IMAGE_UNREADABLE.
    const raw = decodeInputImage(bytes, 'initImage', name);
    // The cloud's limits (common/api/inputs.ts), so a picture started from here can run there too.
    const sides = [raw.width, raw.height];
    if (sides.some((s) => s < MIN_INPUT_SIDE || s > MAX_INPUT_SIDE))
      throw new AppError('INPUT_DIMENSIONS_INVALID', `${name} is ${raw.width}×${raw.height}`, {
        userMessage: `${name} is ${raw.width} × ${raw.height} pixels; starting images can be ${MIN_INPUT_SIDE} to ${MAX_INPUT_SIDE} pixels on each side. Resize it and try again.`,
        details: { width: raw.width, height: raw.height, min: MIN_INPUT_SIDE, max: MAX_INPUT_SIDE },
      });
    const png = sniffImage(bytes) === 'png' ? bytes : encodePng(rgb(raw));
    const existing = library.liveBySha(sha256(png), 'image');
    if (existing) return existing;
    try {
      return await library.saveImage({ png, origin: 'imported', metadata: null });
    } catch (e) {
      // A PNG that decodes but whose header the library's reader rejects: store the decoded pixels.
      if (!AppError.is(e, 'BAD_REQUEST')) throw e;
      return library.saveImage({ png: encodePng(raw), origin: 'imported', metadata: null });
    }
  }

  /** A painted mask for the picture `imageId`: a PNG of exactly that picture's size. */
  async function saveMask(imageId: string, bytes: Uint8Array): Promise<LibraryImage> {
    let start: LibraryImage;
    try {
      start = library.get(imageId);
    } catch {
      throw new AppError('INPUT_IMAGE_NOT_FOUND', `starting image ${imageId} is not in the library`, {
        userMessage:
          'The starting image is no longer in your library. Pick another picture, then paint the mask again.',
      });
    }
    const big = tooLarge(bytes, 'The mask');
    if (big) throw big;
    if (sniffImage(bytes) !== 'png')
      throw new AppError('INPUT_IMAGE_UNSUPPORTED_TYPE', 'a mask must be a PNG', {
        userMessage: 'The mask must be a PNG image. Paint it again in the mask editor.',
      });
    const mask = decodeInputImage(bytes, 'mask');
    if (mask.width !== start.width || mask.height !== start.height)
      throw new AppError(
        'INPUT_IMAGE_SIZE_MISMATCH',
        `mask ${mask.width}×${mask.height} for a ${start.width}×${start.height} starting image`,
        {
          userMessage: `The mask is ${mask.width}×${mask.height} but the starting image is ${start.width}×${start.height}. Paint the mask again over this picture.`,
          details: { mask: [mask.width, mask.height], initImage: [start.width, start.height] },
        },
      );
    // The same strokes again (a retry, a second run) name the same mask.
    return (
      library.liveBySha(sha256(bytes), 'mask') ??
      library.saveImage({ png: bytes, origin: 'local', metadata: null, role: 'mask' })
    );
  }

  return { importPicture, saveMask };
}
