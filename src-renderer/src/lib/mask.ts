/**
 * The inpainting mask as the editor paints it: one byte per pixel of the starting image (255 =
 * repaint, 0 = keep), with undo/redo of whole strokes and a PNG export at exactly the picture's
 * size (grey, white = repaint), which is what the engine reads (decision 0150: luminance ≥ ½).
 * No DOM here, so the rules (brush, eraser, invert, undo, export size) are tested in Node.
 */

export type MaskTool = 'brush' | 'eraser';

export interface Point {
  /** Unit: pixels of the starting image (not of the screen). */
  x: number;
  y: number;
}

/** Whole-stroke undo: this many steps back are kept (a 2048² mask is 4 MB a step). */
export const MAX_UNDO = 30;

/** A brush size that suits a picture: about an eighth of its shorter side, in its own pixels. */
export function defaultBrushSize(width: number, height: number): number {
  return Math.max(1, Math.round(Math.min(width, height) / 8));
}

/** The largest brush offered: half the longer side (one click covers most of the picture). */
export function maxBrushSize(width: number, height: number): number {
  return Math.max(2, Math.round(Math.max(width, height) / 2));
}

export class MaskBitmap {
  readonly data: Uint8Array;
  private undoStack: Uint8Array[] = [];
  private redoStack: Uint8Array[] = [];
  private last: Point | null = null;
  private value = 255;
  private size = 1;

  readonly width: number;
  readonly height: number;

  constructor(width: number, height: number, data?: Uint8Array) {
    this.width = width;
    this.height = height;
    if (!(Number.isInteger(width) && Number.isInteger(height) && width > 0 && height > 0))
      throw new RangeError(`a mask needs a positive whole size, not ${width}×${height}`);
    this.data = data ? Uint8Array.from(data) : new Uint8Array(width * height);
    if (this.data.length !== width * height) throw new RangeError('mask data does not match its size');
  }

  /**
   * A mask read back from RGBA pixels (a stored mask PNG drawn on a canvas), by the engine's rule:
   * luminance × opacity ≥ ½ repaints.
   */
  static fromRgba(width: number, height: number, rgba: ArrayLike<number>): MaskBitmap {
    const m = new MaskBitmap(width, height);
    for (let p = 0; p < width * height; p++) {
      const lum = (0.299 * rgba[p * 4]! + 0.587 * rgba[p * 4 + 1]! + 0.114 * rgba[p * 4 + 2]!) / 255;
      m.data[p] = lum * (rgba[p * 4 + 3]! / 255) >= 0.5 ? 255 : 0;
    }
    return m;
  }

  get canUndo(): boolean {
    return this.undoStack.length > 0;
  }
  get canRedo(): boolean {
    return this.redoStack.length > 0;
  }
  /** Nothing to repaint: the run is image to image, not inpainting. */
  isEmpty(): boolean {
    return !this.data.some((v) => v !== 0);
  }
  /** Pixels marked for repainting. */
  painted(): number {
    let n = 0;
    for (const v of this.data) if (v) n++;
    return n;
  }

  private checkpoint(): void {
    this.undoStack.push(Uint8Array.from(this.data));
    if (this.undoStack.length > MAX_UNDO) this.undoStack.shift();
    this.redoStack = [];
  }

  /** Starts a stroke (one undo step) and paints its first dab. `size` is the brush diameter in picture pixels. */
  begin(tool: MaskTool, size: number, at: Point): void {
    this.checkpoint();
    this.value = tool === 'brush' ? 255 : 0;
    this.size = Math.max(1, size);
    this.last = at;
    this.dab(at);
  }

  /** Continues the stroke to `to`, dabbing along the way so fast moves leave no gaps. */
  moveTo(to: Point): void {
    if (!this.last) return;
    const from = this.last;
    const dist = Math.hypot(to.x - from.x, to.y - from.y);
    const spacing = Math.max(0.5, this.size / 4);
    const n = Math.ceil(dist / spacing);
    for (let i = 1; i <= n; i++)
      this.dab({ x: from.x + ((to.x - from.x) * i) / n, y: from.y + ((to.y - from.y) * i) / n });
    this.last = to;
  }

  end(): void {
    this.last = null;
  }

  get stroking(): boolean {
    return this.last !== null;
  }

  /** A round dab: every pixel whose centre lies within the brush's radius, and always the pixel under the point. */
  private dab(at: Point): void {
    const r = this.size / 2;
    const x0 = Math.max(0, Math.floor(at.x - r));
    const x1 = Math.min(this.width - 1, Math.ceil(at.x + r));
    const y0 = Math.max(0, Math.floor(at.y - r));
    const y1 = Math.min(this.height - 1, Math.ceil(at.y + r));
    for (let y = y0; y <= y1; y++)
      for (let x = x0; x <= x1; x++)
        if ((x + 0.5 - at.x) ** 2 + (y + 0.5 - at.y) ** 2 <= r * r) this.data[y * this.width + x] = this.value;
    const cx = Math.floor(at.x);
    const cy = Math.floor(at.y);
    if (cx >= 0 && cy >= 0 && cx < this.width && cy < this.height) this.data[cy * this.width + cx] = this.value;
  }

  clear(): void {
    if (this.isEmpty()) return;
    this.checkpoint();
    this.data.fill(0);
  }

  /** Repaint what was kept and keep what was to be repainted. */
  invert(): void {
    this.checkpoint();
    for (let p = 0; p < this.data.length; p++) this.data[p] = this.data[p] ? 0 : 255;
  }

  undo(): boolean {
    const prev = this.undoStack.pop();
    if (!prev) return false;
    this.redoStack.push(Uint8Array.from(this.data));
    this.data.set(prev);
    return true;
  }

  redo(): boolean {
    const next = this.redoStack.pop();
    if (!next) return false;
    this.undoStack.push(Uint8Array.from(this.data));
    this.data.set(next);
    return true;
  }

  /** RGBA for the on-screen overlay: the repainted region in `colour`, the rest transparent. */
  overlay(colour: [number, number, number, number]): Uint8ClampedArray<ArrayBuffer> {
    const out = new Uint8ClampedArray(this.width * this.height * 4);
    for (let p = 0; p < this.data.length; p++) if (this.data[p]) out.set(colour, p * 4);
    return out;
  }

  /** The mask as a greyscale PNG the size of the starting image: white repaints, black keeps. */
  toPng(): Uint8Array {
    return encodeGreyPng(this.width, this.height, this.data);
  }
}

// PNG writing: greyscale, 8 bits, zlib "stored" blocks. Masks are small and mostly flat; an
// uncompressed IDAT keeps this dependency-free and byte-for-byte deterministic.

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

export function crc32(bytes: Uint8Array, start = 0, end = bytes.length): number {
  let c = 0xffffffff;
  for (let i = start; i < end; i++) c = CRC_TABLE[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function adler32(bytes: Uint8Array): number {
  let a = 1;
  let b = 0;
  for (let i = 0; i < bytes.length; i++) {
    a = (a + bytes[i]!) % 65521;
    b = (b + a) % 65521;
  }
  return ((b << 16) | a) >>> 0;
}

function be32(out: Uint8Array, at: number, v: number): void {
  out[at] = v >>> 24;
  out[at + 1] = (v >>> 16) & 0xff;
  out[at + 2] = (v >>> 8) & 0xff;
  out[at + 3] = v & 0xff;
}

function chunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  be32(out, 0, data.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(data, 8);
  be32(out, 8 + data.length, crc32(out, 4, 8 + data.length));
  return out;
}

export function encodeGreyPng(width: number, height: number, grey: Uint8Array): Uint8Array {
  const raw = new Uint8Array((width + 1) * height); // filter byte 0 before each row
  for (let y = 0; y < height; y++) raw.set(grey.subarray(y * width, (y + 1) * width), y * (width + 1) + 1);
  const blocks = Math.max(1, Math.ceil(raw.length / 65535));
  const z = new Uint8Array(2 + raw.length + blocks * 5 + 4);
  z[0] = 0x78;
  z[1] = 0x01;
  let o = 2;
  for (let i = 0; i < blocks; i++) {
    const part = raw.subarray(i * 65535, Math.min(raw.length, (i + 1) * 65535));
    z[o++] = i === blocks - 1 ? 1 : 0;
    z[o++] = part.length & 0xff;
    z[o++] = part.length >>> 8;
    z[o++] = ~part.length & 0xff;
    z[o++] = (~part.length >>> 8) & 0xff;
    z.set(part, o);
    o += part.length;
  }
  be32(z, o, adler32(raw));
  const ihdr = new Uint8Array(13);
  be32(ihdr, 0, width);
  be32(ihdr, 4, height);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 0; // greyscale
  const sig = Uint8Array.of(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a);
  const parts = [sig, chunk('IHDR', ihdr), chunk('IDAT', z), chunk('IEND', new Uint8Array(0))];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Base64 of bytes, for the IPC channels that carry pictures. */
export function toBase64(bytes: Uint8Array): string {
  let s = '';
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}
