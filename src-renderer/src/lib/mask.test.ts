import { describe, expect, it } from 'vitest';
import { MAX_UNDO, MaskBitmap, crc32, defaultBrushSize, encodeGreyPng, maxBrushSize } from './mask.ts';

const u32 = (b: Uint8Array, at: number) => ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0;

/** Reads back what encodeGreyPng writes (stored deflate blocks), checking every CRC on the way. */
function readGreyPng(png: Uint8Array): { width: number; height: number; grey: Uint8Array } {
  expect(Array.from(png.subarray(0, 8))).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  let at = 8;
  let width = 0;
  let height = 0;
  let idat = new Uint8Array(0);
  for (;;) {
    const len = u32(png, at);
    const type = String.fromCharCode(...png.subarray(at + 4, at + 8));
    expect(u32(png, at + 8 + len)).toBe(crc32(png, at + 4, at + 8 + len));
    const data = png.subarray(at + 8, at + 8 + len);
    if (type === 'IHDR') {
      width = u32(data, 0);
      height = u32(data, 4);
      expect([data[8], data[9]]).toEqual([8, 0]);
    } else if (type === 'IDAT') idat = Uint8Array.from([...idat, ...data]);
    at += 12 + len;
    if (type === 'IEND') break;
  }
  const raw: number[] = [];
  let o = 2;
  for (;;) {
    const final = idat[o]! & 1;
    const len = idat[o + 1]! | (idat[o + 2]! << 8);
    raw.push(...idat.subarray(o + 5, o + 5 + len));
    o += 5 + len;
    if (final) break;
  }
  const grey = new Uint8Array(width * height);
  for (let y = 0; y < height; y++) {
    expect(raw[y * (width + 1)]).toBe(0);
    grey.set(raw.slice(y * (width + 1) + 1, (y + 1) * (width + 1)), y * width);
  }
  return { width, height, grey };
}

describe('mask editor logic', () => {
  it('exports a PNG the size of the starting image, white where painted', () => {
    const m = new MaskBitmap(24, 16);
    m.begin('brush', 4, { x: 4, y: 4 });
    m.moveTo({ x: 20, y: 4 });
    m.end();
    const { width, height, grey } = readGreyPng(m.toPng());
    expect([width, height]).toEqual([24, 16]);
    expect(grey).toEqual(m.data);
    expect(grey[4 * 24 + 12]).toBe(255); // along the stroke: no gaps between dabs
    expect(grey[12 * 24 + 12]).toBe(0); // far from it
    expect(new Set(grey)).toEqual(new Set([0, 255]));
  });

  it('a large mask spans several deflate blocks and still reads back exactly', () => {
    const m = new MaskBitmap(300, 300);
    m.begin('brush', 100, { x: 150, y: 150 });
    m.end();
    const back = readGreyPng(m.toPng());
    expect([back.width, back.height]).toEqual([300, 300]);
    expect(back.grey).toEqual(m.data);
  });

  it('the eraser takes paint away; invert swaps repaint and keep; clear empties', () => {
    const m = new MaskBitmap(16, 16);
    m.begin('brush', 16, { x: 8, y: 8 });
    m.end();
    const full = m.painted();
    m.begin('eraser', 4, { x: 8, y: 8 });
    m.end();
    expect(m.data[8 * 16 + 8]).toBe(0);
    const afterErase = m.painted();
    expect(afterErase).toBeLessThan(full);
    m.invert();
    expect(m.painted()).toBe(256 - afterErase);
    m.clear();
    expect(m.isEmpty()).toBe(true);
  });

  it('undo and redo step whole strokes; a new stroke drops the redo branch; history is bounded', () => {
    const m = new MaskBitmap(8, 8);
    expect(m.canUndo).toBe(false);
    m.begin('brush', 2, { x: 1, y: 1 });
    m.moveTo({ x: 6, y: 1 });
    m.end();
    const one = Uint8Array.from(m.data);
    m.invert();
    expect(m.undo()).toBe(true);
    expect(m.data).toEqual(one);
    expect(m.undo()).toBe(true);
    expect(m.isEmpty()).toBe(true);
    expect(m.undo()).toBe(false);
    expect(m.redo()).toBe(true);
    expect(m.data).toEqual(one);
    m.begin('brush', 1, { x: 7, y: 7 });
    m.end();
    expect(m.canRedo).toBe(false);
    for (let i = 0; i < MAX_UNDO + 10; i++) m.invert();
    let undos = 0;
    while (m.undo()) undos++;
    expect(undos).toBe(MAX_UNDO);
  });

  it('reads a stored mask back by the engine rule (luminance × opacity ≥ ½)', () => {
    const rgba = [255, 255, 255, 255, 0, 0, 0, 255, 255, 255, 255, 0, 200, 200, 200, 255];
    const m = MaskBitmap.fromRgba(4, 1, rgba);
    expect(Array.from(m.data)).toEqual([255, 0, 0, 255]);
  });

  it('a one-pixel brush still paints the pixel under the pointer; dabs stay inside the picture', () => {
    const m = new MaskBitmap(5, 5);
    m.begin('brush', 1, { x: 4.9, y: 0.1 });
    m.moveTo({ x: 40, y: -3 });
    m.end();
    expect(m.data[4]).toBe(255);
    expect(m.painted()).toBeGreaterThan(0);
    expect(m.data.length).toBe(25);
  });

  it('brush sizes suit the picture', () => {
    expect(defaultBrushSize(64, 64)).toBe(8);
    expect(defaultBrushSize(4, 4)).toBe(1);
    expect(maxBrushSize(64, 48)).toBe(32);
    expect(encodeGreyPng(1, 1, Uint8Array.of(255)).length).toBeGreaterThan(50);
  });
});
