/**
 * Starting images and masks: decoding whatever PNG or JPEG a person brings (any bit depth, palette,
 * grey, alpha, interlacing — pngjs and jpeg-js, both pure JavaScript), resampling to the request's
 * size, and the inpainting masks: the latent mask the sampler blends with and the feathered pixel
 * mask that pastes the original back at the end.
 */
import { AppError } from '@atelier/common';
import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import type { RawImage } from '../png/png.ts';

export type InputRole = 'initImage' | 'mask';

const ROLE_NAME: Record<InputRole, string> = { initImage: 'starting image', mask: 'mask' };

/** Larger inputs are refused before decoding fills memory. Unit: pixels (64 MP: 8192 × 8192). */
export const MAX_INPUT_PIXELS = 8192 * 8192;

export type ImageKind = 'png' | 'jpeg';

/** The file type by its first bytes (the name or a declared type can lie). */
export function sniffImage(bytes: Uint8Array): ImageKind | null {
  if (bytes.length >= 8 && bytes[0] === 0x89 && bytes[1] === 0x50 && bytes[2] === 0x4e && bytes[3] === 0x47)
    return 'png';
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return 'jpeg';
  return null;
}

/**
 * Width and height from a PNG's or JPEG's header, without decoding the pixels; null when the bytes
 * are neither (or the header is cut short). Decoding then says what exactly is wrong.
 */
export function imageSize(bytes: Uint8Array): { width: number; height: number } | null {
  const kind = sniffImage(bytes);
  const u16 = (i: number) => (bytes[i]! << 8) | bytes[i + 1]!;
  const u32 = (i: number) => ((bytes[i]! << 24) | (bytes[i + 1]! << 16) | (bytes[i + 2]! << 8) | bytes[i + 3]!) >>> 0;
  if (kind === 'png') return bytes.length >= 24 ? { width: u32(16), height: u32(20) } : null;
  if (kind !== 'jpeg') return null;
  // Walk the markers to the first start-of-frame (SOF0–SOF15 but DHT, JPG and DAC).
  let i = 2;
  while (i + 9 < bytes.length) {
    if (bytes[i] !== 0xff) return null;
    const marker = bytes[i + 1]!;
    if (marker === 0xff) {
      i++;
      continue;
    }
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc)
      return { width: u16(i + 7), height: u16(i + 5) };
    i += 2 + u16(i + 2);
  }
  return null;
}

/** A request side for an image side: down to a multiple of 8, within the schema's 64–2048. */
export function requestSide(pixels: number): number {
  return Math.max(64, Math.min(2048, Math.floor(pixels / 8) * 8));
}

/**
 * Decodes a PNG or JPEG into 8-bit RGBA. Not PNG/JPEG → INPUT_IMAGE_UNSUPPORTED_TYPE; damaged,
 * truncated or too large → INPUT_IMAGE_UNREADABLE. `name` (a file name or id) goes into the message.
 */
export function decodeInputImage(bytes: Uint8Array, role: InputRole, name?: string): RawImage {
  const what = `${ROLE_NAME[role]}${name ? ` ${name}` : ''}`;
  const kind = sniffImage(bytes);
  if (!kind)
    throw new AppError('INPUT_IMAGE_UNSUPPORTED_TYPE', `${what} is not a PNG or JPEG file`, {
      userMessage: `The ${what} is not a PNG or JPEG file. Convert it to PNG or JPEG and try again.`,
      details: { role },
    });
  const unreadable = (reason: string, cause?: unknown) =>
    new AppError('INPUT_IMAGE_UNREADABLE', `${what} could not be decoded as ${kind.toUpperCase()}: ${reason}`, {
      userMessage: `The ${what} could not be read (${reason}). Save it again as PNG or JPEG and try again.`,
      details: { role, reason },
      cause,
    });
  let width: number;
  let height: number;
  let data: Uint8Array;
  try {
    if (kind === 'png') {
      const png = PNG.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
      ({ width, height } = png);
      data = new Uint8Array(png.data.buffer, png.data.byteOffset, png.data.byteLength);
    } else {
      const img = jpeg.decode(bytes, {
        useTArray: true,
        formatAsRGBA: true,
        maxResolutionInMP: MAX_INPUT_PIXELS / 1e6,
        maxMemoryUsageInMB: 1024,
      });
      ({ width, height } = img);
      data = img.data;
    }
  } catch (e) {
    throw unreadable(((e as Error).message ?? String(e)).split('\n')[0]!.slice(0, 200), e);
  }
  if (!(width > 0 && height > 0) || data.length < width * height * 4) throw unreadable('it has no pixels');
  if (width * height > MAX_INPUT_PIXELS) throw unreadable(`${width}×${height} is larger than 64 megapixels`);
  return { width, height, channels: 4, data };
}

/** Drops alpha (a starting image is its colour; transparent pixels keep the colour they store). */
export function toRgb(img: RawImage): RawImage {
  if (img.channels === 3) return img;
  const n = img.width * img.height;
  const out = new Uint8Array(n * 3);
  for (let p = 0; p < n; p++) {
    out[p * 3] = img.data[p * 4]!;
    out[p * 3 + 1] = img.data[p * 4 + 1]!;
    out[p * 3 + 2] = img.data[p * 4 + 2]!;
  }
  return { width: img.width, height: img.height, channels: 3, data: out };
}

/**
 * Resamples to `width`×`height` with a triangle (bilinear) filter widened by the scale factor when
 * shrinking, so a downscale averages every source pixel rather than skipping some (what PIL's
 * BILINEAR does). Separable, float64 accumulation, rounded once: deterministic everywhere.
 */
export function resize(img: RawImage, width: number, height: number): RawImage {
  if (img.width === width && img.height === height) return img;
  const ch = img.channels;
  const horizontal = weights(img.width, width);
  const vertical = weights(img.height, height);
  const mid = new Float64Array(width * img.height * ch);
  for (let y = 0; y < img.height; y++)
    for (let x = 0; x < width; x++) {
      const { start, w } = horizontal[x]!;
      for (let c = 0; c < ch; c++) {
        let sum = 0;
        for (let k = 0; k < w.length; k++) sum += w[k]! * img.data[(y * img.width + start + k) * ch + c]!;
        mid[(y * width + x) * ch + c] = sum;
      }
    }
  const out = new Uint8Array(width * height * ch);
  for (let y = 0; y < height; y++) {
    const { start, w } = vertical[y]!;
    for (let x = 0; x < width; x++)
      for (let c = 0; c < ch; c++) {
        let sum = 0;
        for (let k = 0; k < w.length; k++) sum += w[k]! * mid[((start + k) * width + x) * ch + c]!;
        out[(y * width + x) * ch + c] = Math.max(0, Math.min(255, Math.round(sum)));
      }
  }
  return { width, height, channels: ch, data: out };
}

function weights(src: number, dst: number): { start: number; w: Float64Array }[] {
  const scale = src / dst;
  const support = Math.max(1, scale);
  const out: { start: number; w: Float64Array }[] = [];
  for (let i = 0; i < dst; i++) {
    const centre = (i + 0.5) * scale - 0.5;
    const start = Math.max(0, Math.ceil(centre - support));
    const end = Math.min(src - 1, Math.floor(centre + support));
    const w = new Float64Array(end - start + 1);
    let total = 0;
    for (let k = start; k <= end; k++) {
      const v = Math.max(0, 1 - Math.abs(k - centre) / support);
      w[k - start] = v;
      total += v;
    }
    if (total === 0) {
      // Only when the nearest source pixel sits exactly at the support's edge: take it alone.
      w.fill(0);
      w[Math.min(w.length - 1, Math.max(0, Math.round(centre) - start))] = 1;
      total = 1;
    }
    for (let k = 0; k < w.length; k++) w[k] = w[k]! / total;
    out.push({ start, w });
  }
  return out;
}

/**
 * A mask image → 1 (repaint) or 0 (keep) per pixel: its luminance times its opacity, at least one
 * half. So white on black, and opaque strokes on a transparent layer, both mean "repaint here".
 */
export function binaryMask(img: RawImage): Uint8Array {
  const n = img.width * img.height;
  const out = new Uint8Array(n);
  const ch = img.channels;
  for (let p = 0; p < n; p++) {
    const r = img.data[p * ch]!;
    const g = img.data[p * ch + 1]!;
    const b = img.data[p * ch + 2]!;
    const a = ch === 4 ? img.data[p * ch + 3]! : 255;
    const value = ((0.299 * r + 0.587 * g + 0.114 * b) * a) / 255;
    out[p] = value >= 127.5 ? 1 : 0;
  }
  return out;
}

/**
 * The latent-resolution mask the sampler blends with: a latent pixel is repainted when any image
 * pixel of its 8×8 block is. Growing the region to whole blocks lets the repaint reach the mask's
 * edge; the pixels this adds outside the mask are restored by the final paste.
 */
export function latentMask(mask: Uint8Array, width: number, height: number): Float32Array {
  const lw = width / 8;
  const lh = height / 8;
  const out = new Float32Array(lw * lh);
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) if (mask[y * width + x]) out[(y >> 3) * lw + (x >> 3)] = 1;
  return out;
}

/** Nearest-neighbour latent mask, as diffusers gives an inpainting UNet (its 5th input channel). */
export function nearestLatentMask(mask: Uint8Array, width: number, height: number): Float32Array {
  const lw = width / 8;
  const lh = height / 8;
  const out = new Float32Array(lw * lh);
  for (let y = 0; y < lh; y++) for (let x = 0; x < lw; x++) out[y * lw + x] = mask[y * 8 * width + x * 8]!;
  return out;
}

/** The soft edge of the final paste. Unit: pixels; 2 at 64×64, 16 at 512×512. */
export function featherRadius(width: number, height: number): number {
  return Math.max(1, Math.round(Math.min(width, height) / 32));
}

/**
 * The paste weight per pixel: the binary mask box-blurred with radius `r` (window 2r + 1, the
 * average over the window's pixels inside the image). It is exactly 0 wherever no masked pixel is
 * within `r` pixels on either axis, so those pixels come back byte for byte from the start image.
 */
export function featherMask(mask: Uint8Array, width: number, height: number, r: number): Float64Array {
  const rows = new Float64Array(width * height);
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) {
      let sum = 0;
      let n = 0;
      for (let k = Math.max(0, x - r); k <= Math.min(width - 1, x + r); k++, n++) sum += mask[y * width + k]!;
      rows[y * width + x] = sum / n;
    }
  const out = new Float64Array(width * height);
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) {
      let sum = 0;
      let n = 0;
      for (let k = Math.max(0, y - r); k <= Math.min(height - 1, y + r); k++, n++) sum += rows[k * width + x]!;
      out[y * width + x] = sum / n;
    }
  return out;
}

/** `generated` inside the mask, `original` outside, blended by the feather weight. Both RGB. */
export function pasteOutsideMask(generated: RawImage, original: RawImage, weight: Float64Array): RawImage {
  const n = generated.width * generated.height;
  const out = new Uint8Array(n * 3);
  for (let p = 0; p < n; p++) {
    const w = weight[p]!;
    for (let c = 0; c < 3; c++) {
      const o = original.data[p * 3 + c]!;
      out[p * 3 + c] =
        w === 0 ? o : w === 1 ? generated.data[p * 3 + c]! : Math.round(o + (generated.data[p * 3 + c]! - o) * w);
    }
  }
  return { width: generated.width, height: generated.height, channels: 3, data: out };
}

/** RGB bytes → planar [1, 3, h, w] in [−1, 1], the VAE encoder's input; pixels where `blank` is 1 become 0 (grey). */
export function toPlanarSigned(img: RawImage, blank?: Uint8Array): Float32Array {
  const n = img.width * img.height;
  const out = new Float32Array(3 * n);
  for (let c = 0; c < 3; c++)
    for (let p = 0; p < n; p++) out[c * n + p] = blank && blank[p] ? 0 : img.data[p * img.channels + c]! / 127.5 - 1;
  return out;
}
