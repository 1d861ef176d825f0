/**
 * Just enough PNG reading for the library: the size from IHDR and the tEXt/iTXt chunks, so an
 * imported image's `invokeai_metadata` can be read without decoding pixels.
 */
import { ImageMetadata, METADATA_PNG_KEY } from '@atelier/common';

const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

export interface PngInfo {
  width: number;
  height: number;
  text: Record<string, string>;
}

/** Returns null when the bytes are not a PNG. */
export function readPngInfo(bytes: Uint8Array): PngInfo | null {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buf.length < 33 || !buf.subarray(0, 8).equals(SIGNATURE)) return null;
  let width = 0;
  let height = 0;
  const text: Record<string, string> = {};
  let off = 8;
  while (off + 12 <= buf.length) {
    const len = buf.readUInt32BE(off);
    const type = buf.toString('latin1', off + 4, off + 8);
    const start = off + 8;
    const end = start + len;
    if (end + 4 > buf.length) break;
    const data = buf.subarray(start, end);
    if (type === 'IHDR') {
      width = data.readUInt32BE(0);
      height = data.readUInt32BE(4);
    } else if (type === 'tEXt') {
      const nul = data.indexOf(0);
      if (nul > 0) text[data.toString('latin1', 0, nul)] = data.toString('latin1', nul + 1);
    } else if (type === 'iTXt') {
      // keyword \0 compressionFlag compressionMethod languageTag \0 translatedKeyword \0 text
      const nul = data.indexOf(0);
      if (nul > 0 && data[nul + 1] === 0) {
        const lang = data.indexOf(0, nul + 3);
        const translated = lang < 0 ? -1 : data.indexOf(0, lang + 1);
        if (translated > 0) text[data.toString('latin1', 0, nul)] = data.toString('utf8', translated + 1);
      }
    } else if (type === 'IEND') break;
    off = end + 4;
  }
  if (width === 0 || height === 0) return null;
  return { width, height, text };
}

/** The image's `invokeai_metadata`, or null when absent or not in the expected shape. */
export function metadataOf(info: PngInfo): ImageMetadata | null {
  const raw = info.text[METADATA_PNG_KEY];
  if (raw === undefined) return null;
  try {
    const parsed = ImageMetadata.safeParse(JSON.parse(raw));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}
