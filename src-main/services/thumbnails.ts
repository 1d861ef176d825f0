/**
 * Gallery thumbnails (issue 13, decision 0144): a small PNG beside each library image
 * (`img_….thumb.png` next to `img_….png`), made once when the image is saved — or taken as
 * downloaded from the cloud — so the grid never loads full-size pictures.
 *
 * Decoding is bounded: a PNG whose header declares more pixels than MAX_DECODE_PIXELS is not
 * decoded at all (an imported or synced file could declare 65535×65535 and ask for gigabytes),
 * the image data may not inflate to more than those pixels need (a zlib bomb stops at the bound),
 * and anything the decoder refuses yields no thumbnail rather than an error: the grid then falls
 * back to the full image, as before.
 */
import { inflateSync } from 'node:zlib';
import { decodePng, downscale, encodePng } from '@atelier/engine';
import { readPngInfo } from './png.ts';

/** Unit: pixels on the longer side of a thumbnail. */
export const THUMB_SIDE = 256;
/** Unit: pixels (width × height) a PNG may declare for us to decode it (2048² is the largest generation). */
export const MAX_DECODE_PIXELS = 36_000_000;

/** `img_X.png` → `img_X.thumb.png` (the library's file-name rule for thumbnails). */
export function thumbFileName(imageFileName: string): string {
  return imageFileName.replace(/\.png$/, '.thumb.png');
}

/** The thumbnail of a PNG, or null when it cannot (or must not) be decoded. */
export function makeThumbnail(png: Uint8Array, side = THUMB_SIDE): Uint8Array | null {
  const info = readPngInfo(png);
  if (!info || info.width * info.height > MAX_DECODE_PIXELS) return null;
  try {
    // Throws once the stream inflates past what 8-bit RGBA at the declared size needs.
    inflateSync(idatOf(png), { maxOutputLength: (info.width * 4 + 1) * info.height });
    const decoded = decodePng(png);
    // Already small: the image is its own thumbnail, re-encoded without its text chunks.
    return encodePng(downscale(decoded, side));
  } catch {
    // Palette, 16-bit or interlaced PNGs (imports from other tools): no thumbnail.
    return null;
  }
}

/** The concatenated IDAT chunks (the zlib stream) of a PNG. */
function idatOf(png: Uint8Array): Buffer {
  const buf = Buffer.from(png.buffer, png.byteOffset, png.byteLength);
  const parts: Buffer[] = [];
  for (let off = 8; off + 12 <= buf.length;) {
    const len = buf.readUInt32BE(off);
    if (off + 12 + len > buf.length) break;
    if (buf.toString('latin1', off + 4, off + 8) === 'IDAT') parts.push(buf.subarray(off + 8, off + 8 + len));
    off += 12 + len;
  }
  return Buffer.concat(parts);
}
