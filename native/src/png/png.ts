/**
 * PNG encode/decode on node:zlib. Encoding is deterministic: fixed filter heuristic, fixed zlib
 * level, no timestamps, text chunks in the order given. Text is written as tEXt (Latin-1); callers
 * put ASCII in it (JSON with \u escapes), which is what InvokeAI does for `invokeai_metadata`.
 */
import { crc32, deflateSync, inflateSync } from 'node:zlib';

const SIGNATURE = Uint8Array.of(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a);

export interface RawImage {
  width: number;
  height: number;
  /** 3 = RGB, 4 = RGBA; 8 bits per sample, rows top to bottom. */
  channels: 3 | 4;
  data: Uint8Array;
}

export interface DecodedPng extends RawImage {
  text: Record<string, string>;
}

export class PngError extends Error {}

function chunk(type: string, data: Uint8Array): Buffer {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, 'latin1');
  out.set(data, 8);
  out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
  return out;
}

export function encodePng(img: RawImage, text: Record<string, string> = {}): Uint8Array {
  const { width, height, channels, data } = img;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1)
    throw new PngError(`invalid size ${width}×${height}`);
  if (data.length !== width * height * channels)
    throw new PngError(
      `expected ${width * height * channels} bytes for ${width}×${height}×${channels}, got ${data.length}`,
    );
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8;
  ihdr[9] = channels === 3 ? 2 : 6;
  const chunks = [Buffer.from(SIGNATURE), chunk('IHDR', ihdr)];
  for (const [key, value] of Object.entries(text)) {
    if (!/^[\x20-\x7e\xa1-\xff]{1,79}$/.test(key) || key.startsWith(' ') || key.endsWith(' '))
      throw new PngError(`invalid tEXt keyword ${JSON.stringify(key)}`);
    if ([...value].some((ch) => ch.charCodeAt(0) > 0xff)) throw new PngError(`tEXt value for ${key} is not Latin-1`);
    chunks.push(chunk('tEXt', Buffer.from(`${key}\0${value}`, 'latin1')));
  }
  chunks.push(chunk('IDAT', deflateSync(filterRows(img), { level: 6, memLevel: 8, strategy: 0 })));
  chunks.push(chunk('IEND', new Uint8Array(0)));
  return new Uint8Array(Buffer.concat(chunks));
}

const paeth = (a: number, b: number, c: number) => {
  const p = a + b - c;
  const pa = Math.abs(p - a);
  const pb = Math.abs(p - b);
  const pc = Math.abs(p - c);
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
};

/** |v| of a filtered byte read as signed (two's complement), for every byte value. */
const ABS_SIGNED = Uint8Array.from({ length: 256 }, (_, v) => (v < 128 ? v : 256 - v));

/**
 * Each row with the filter (of the five) whose output has the smallest sum of |signed bytes|
 * (libpng's heuristic). All five candidates are computed in one pass over the row. The Paeth
 * choice and the absolute values are branch-free (masks and a table): on noisy pixels the
 * branches mispredict so often that this runs 2–3× faster, with the same output.
 */
function filterRows({ width, height, channels, data }: RawImage): Uint8Array {
  const stride = width * channels;
  const out = new Uint8Array((stride + 1) * height);
  const fSub = new Uint8Array(stride);
  const fUp = new Uint8Array(stride);
  const fAvg = new Uint8Array(stride);
  const fPaeth = new Uint8Array(stride);
  const zero = new Uint8Array(stride);
  const abs = ABS_SIGNED;
  for (let y = 0; y < height; y++) {
    const row = data.subarray(y * stride, (y + 1) * stride);
    const prev = y > 0 ? data.subarray((y - 1) * stride, y * stride) : zero;
    let s0 = 0;
    let s1 = 0;
    let s2 = 0;
    let s3 = 0;
    let s4 = 0;
    for (let x = 0; x < stride; x++) {
      const raw = row[x]!;
      const b = prev[x]!;
      let a = 0;
      let c = 0;
      if (x >= channels) {
        a = row[x - channels]!;
        c = prev[x - channels]!;
      }
      // Paeth: with p = a + b − c, |p − a| = |b − c|, |p − b| = |a − c|, |p − c| = |a + b − 2c|.
      let pa = b - c;
      pa = (pa ^ (pa >> 31)) - (pa >> 31);
      let pb = a - c;
      pb = (pb ^ (pb >> 31)) - (pb >> 31);
      let pc = a + b - c - c;
      pc = (pc ^ (pc >> 31)) - (pc >> 31);
      const notA = ((pb - pa) | (pc - pa)) >> 31; // −1 unless pa ≤ pb and pa ≤ pc
      const notB = (pc - pb) >> 31; // −1 unless pb ≤ pc
      const bOrC = b ^ ((b ^ c) & notB);
      const pred = a ^ ((a ^ bOrC) & notA);
      const v1 = (raw - a) & 0xff;
      const v2 = (raw - b) & 0xff;
      const v3 = (raw - ((a + b) >> 1)) & 0xff;
      const v4 = (raw - pred) & 0xff;
      fSub[x] = v1;
      fUp[x] = v2;
      fAvg[x] = v3;
      fPaeth[x] = v4;
      s0 += abs[raw]!;
      s1 += abs[v1]!;
      s2 += abs[v2]!;
      s3 += abs[v3]!;
      s4 += abs[v4]!;
    }
    // The first of equal sums wins, as before.
    let best = 0;
    let bestSum = s0;
    if (s1 < bestSum) {
      best = 1;
      bestSum = s1;
    }
    if (s2 < bestSum) {
      best = 2;
      bestSum = s2;
    }
    if (s3 < bestSum) {
      best = 3;
      bestSum = s3;
    }
    if (s4 < bestSum) best = 4;
    const o = y * (stride + 1);
    out[o] = best;
    out.set(best === 0 ? row : best === 1 ? fSub : best === 2 ? fUp : best === 3 ? fAvg : fPaeth, o + 1);
  }
  return out;
}

/** Walks the chunks of a PNG, checking the signature and every CRC. */
function* chunks(png: Uint8Array): Generator<{ type: string; data: Uint8Array }> {
  if (png.length < 8 || !SIGNATURE.every((b, i) => png[i] === b)) throw new PngError('not a PNG file');
  const buf = Buffer.from(png.buffer, png.byteOffset, png.byteLength);
  let pos = 8;
  while (pos + 12 <= buf.length) {
    const len = buf.readUInt32BE(pos);
    if (pos + 12 + len > buf.length) throw new PngError('truncated chunk');
    const type = buf.toString('latin1', pos + 4, pos + 8);
    if (crc32(buf.subarray(pos + 4, pos + 8 + len)) !== buf.readUInt32BE(pos + 8 + len))
      throw new PngError(`CRC mismatch in ${type} chunk`);
    yield { type, data: buf.subarray(pos + 8, pos + 8 + len) };
    if (type === 'IEND') return;
    pos += 12 + len;
  }
  throw new PngError('missing IEND chunk');
}

/** The text chunks (tEXt, zTXt, iTXt) of a PNG, keyword → value, without decoding pixels. */
export function readPngText(png: Uint8Array): Record<string, string> {
  const text: Record<string, string> = {};
  for (const { type, data } of chunks(png)) {
    const buf = Buffer.from(data);
    const nul = buf.indexOf(0);
    if (nul <= 0) continue;
    const key = buf.toString('latin1', 0, nul);
    if (type === 'tEXt') text[key] = buf.toString('latin1', nul + 1);
    else if (type === 'zTXt') text[key] = inflateSync(buf.subarray(nul + 2)).toString('latin1');
    else if (type === 'iTXt') {
      const compressed = buf[nul + 1] === 1;
      const langEnd = buf.indexOf(0, nul + 3);
      const transEnd = buf.indexOf(0, langEnd + 1);
      if (langEnd < 0 || transEnd < 0) continue;
      const body = buf.subarray(transEnd + 1);
      text[key] = (compressed ? inflateSync(body) : body).toString('utf8');
    }
  }
  return text;
}

/** Decodes an 8-bit, non-interlaced RGB or RGBA PNG (what the engine writes) with its text. */
export function decodePng(png: Uint8Array): DecodedPng {
  let width = 0;
  let height = 0;
  let channels: 3 | 4 = 3;
  const idat: Uint8Array[] = [];
  for (const { type, data } of chunks(png)) {
    if (type === 'IHDR') {
      const b = Buffer.from(data);
      width = b.readUInt32BE(0);
      height = b.readUInt32BE(4);
      if (b[8] !== 8 || (b[9] !== 2 && b[9] !== 6) || b[12] !== 0)
        throw new PngError('only 8-bit non-interlaced RGB/RGBA PNGs are supported');
      channels = b[9] === 2 ? 3 : 4;
    } else if (type === 'IDAT') idat.push(data);
  }
  const raw = inflateSync(Buffer.concat(idat));
  const stride = width * channels;
  if (raw.length !== (stride + 1) * height) throw new PngError('image data has the wrong length');
  const out = new Uint8Array(stride * height);
  for (let y = 0; y < height; y++) {
    const type = raw[y * (stride + 1)]!;
    const src = y * (stride + 1) + 1;
    const row = y * stride;
    for (let x = 0; x < stride; x++) {
      const a = x >= channels ? out[row + x - channels]! : 0;
      const b = y > 0 ? out[row - stride + x]! : 0;
      const c = x >= channels && y > 0 ? out[row - stride + x - channels]! : 0;
      const pred =
        type === 0 ? 0 : type === 1 ? a : type === 2 ? b : type === 3 ? (a + b) >> 1 : type === 4 ? paeth(a, b, c) : -1;
      if (pred < 0) throw new PngError(`unknown filter type ${type}`);
      out[row + x] = (raw[src + x]! + pred) & 0xff;
    }
  }
  return { width, height, channels, data: out, text: readPngText(png) };
}

/** Box-filter downscale so the longest side is at most `maxSide` (never upscales). */
export function downscale(img: RawImage, maxSide: number): RawImage {
  const scale = Math.min(1, maxSide / Math.max(img.width, img.height));
  if (scale === 1) return img;
  const w = Math.max(1, Math.round(img.width * scale));
  const h = Math.max(1, Math.round(img.height * scale));
  const ch = img.channels;
  const out = new Uint8Array(w * h * ch);
  for (let y = 0; y < h; y++) {
    const y0 = Math.floor((y * img.height) / h);
    const y1 = Math.max(y0 + 1, Math.floor(((y + 1) * img.height) / h));
    for (let x = 0; x < w; x++) {
      const x0 = Math.floor((x * img.width) / w);
      const x1 = Math.max(x0 + 1, Math.floor(((x + 1) * img.width) / w));
      const n = (y1 - y0) * (x1 - x0);
      for (let c = 0; c < ch; c++) {
        let sum = 0;
        for (let yy = y0; yy < y1; yy++)
          for (let xx = x0; xx < x1; xx++) sum += img.data[(yy * img.width + xx) * ch + c]!;
        out[(y * w + x) * ch + c] = Math.round(sum / n);
      }
    }
  }
  return { width: w, height: h, channels: ch, data: out };
}
