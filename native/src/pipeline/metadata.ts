import { ImageMetadata, METADATA_PNG_KEY } from '@atelier/common';
import { readPngText } from '../png/png.ts';

/**
 * The JSON stored in the `invokeai_metadata` tEXt chunk. Non-ASCII characters are written as \u
 * escapes (as Python's json.dumps does for InvokeAI), so the chunk stays valid Latin-1 text.
 */
export function metadataText(meta: ImageMetadata): string {
  return JSON.stringify(meta).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** The generation metadata of a PNG written by Atelier or InvokeAI; null if absent or not valid. */
export function readPngMetadata(png: Uint8Array): ImageMetadata | null {
  let text: string | undefined;
  try {
    text = readPngText(png)[METADATA_PNG_KEY];
  } catch {
    return null;
  }
  if (text === undefined) return null;
  try {
    const parsed = ImageMetadata.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}
