import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { decodePng, downscale, encodePng, PngError, readPngText, type RawImage } from './png.ts';

function gradient(width: number, height: number, channels: 3 | 4 = 3): RawImage {
  const data = new Uint8Array(width * height * channels);
  for (let i = 0; i < data.length; i++) data[i] = (i * 37 + (i >> 5)) & 0xff;
  return { width, height, channels, data };
}

describe('png', () => {
  it('round-trips RGB and RGBA pixels and tEXt chunks', () => {
    for (const ch of [3, 4] as const) {
      const img = gradient(33, 17, ch);
      const png = encodePng(img, { invokeai_metadata: '{"a":1}', Software: 'Atelier' });
      const back = decodePng(png);
      expect(back.width).toBe(33);
      expect(back.height).toBe(17);
      expect(back.channels).toBe(ch);
      expect(back.data).toEqual(img.data);
      expect(back.text).toEqual({ invokeai_metadata: '{"a":1}', Software: 'Atelier' });
      expect(readPngText(png)).toEqual(back.text);
    }
  });

  it('is byte-for-byte deterministic', () => {
    const img = gradient(64, 64);
    const h = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
    expect(h(encodePng(img, { k: 'v' }))).toBe(h(encodePng(img, { k: 'v' })));
  });

  it('rejects wrong sizes, non-Latin-1 text and corrupted files', () => {
    expect(() => encodePng({ width: 2, height: 2, channels: 3, data: new Uint8Array(11) })).toThrow(PngError);
    expect(() => encodePng(gradient(2, 2), { k: '東京' })).toThrow(/Latin-1/);
    const png = encodePng(gradient(4, 4));
    const bad = png.slice();
    bad[bad.length - 20] = bad[bad.length - 20]! ^ 0xff;
    expect(() => decodePng(bad)).toThrow(/CRC mismatch/);
    expect(() => readPngText(new Uint8Array(10))).toThrow(/not a PNG/);
  });

  it('downscales with a box filter to the longest side, never upscaling', () => {
    const img: RawImage = { width: 4, height: 2, channels: 3, data: new Uint8Array(24) };
    img.data.set([0, 0, 0, 100, 100, 100], 0); // the top-left 2×1 block of row 0
    const small = downscale(img, 2);
    expect([small.width, small.height]).toEqual([2, 1]);
    expect([...small.data.slice(0, 3)]).toEqual([25, 25, 25]); // mean of 0, 100, 0, 0
    expect(downscale(img, 10)).toBe(img);
  });
});
