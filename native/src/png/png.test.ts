import { createHash } from 'node:crypto';
import { inflateSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { decodePng, downscale, encodePng, PngError, readPngText, type RawImage } from './png.ts';

function gradient(width: number, height: number, channels: 3 | 4 = 3): RawImage {
  const data = new Uint8Array(width * height * channels);
  for (let i = 0; i < data.length; i++) data[i] = (i * 37 + (i >> 5)) & 0xff;
  return { width, height, channels, data };
}

/** The filtered scanlines of a PNG written by encodePng (one IDAT chunk). */
function filteredRows(png: Uint8Array): Uint8Array {
  const buf = Buffer.from(png);
  const at = buf.indexOf('IDAT', 8, 'latin1');
  return new Uint8Array(inflateSync(buf.subarray(at + 4, at + 4 + buf.readUInt32BE(at - 4))));
}

/** libpng's heuristic written plainly: per row, the filter with the least Σ|signed byte|, first on ties. */
function referenceFilter({ width, height, channels, data }: RawImage): Uint8Array {
  const stride = width * channels;
  const out = new Uint8Array((stride + 1) * height);
  const px = (y: number, x: number) => (y < 0 || x < 0 ? 0 : data[y * stride + x]!);
  for (let y = 0; y < height; y++) {
    const rows = [0, 1, 2, 3, 4].map((type) =>
      Array.from({ length: stride }, (_, x) => {
        const [raw, a, b, c] = [px(y, x), px(y, x - channels), px(y - 1, x), px(y - 1, x - channels)];
        const p = a + b - c;
        const [pa, pb, pc] = [Math.abs(p - a), Math.abs(p - b), Math.abs(p - c)];
        const paeth = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
        return (raw - [0, a, b, Math.floor((a + b) / 2), paeth][type]!) & 0xff;
      }),
    );
    const sums = rows.map((r) => r.reduce((s, v) => s + (v < 128 ? v : 256 - v), 0));
    const best = sums.indexOf(Math.min(...sums));
    out[y * (stride + 1)] = best;
    out.set(rows[best]!, y * (stride + 1) + 1);
  }
  return out;
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

  it('filters each row as the plain libpng heuristic does, on smooth and noisy pixels', () => {
    let seed = 7;
    const noise = () => {
      seed = (seed * 1103515245 + 12345) >>> 0;
      return (seed >>> 16) & 0xff;
    };
    const images: RawImage[] = [
      gradient(40, 23, 3),
      { width: 31, height: 19, channels: 4, data: Uint8Array.from({ length: 31 * 19 * 4 }, noise) },
      {
        width: 29,
        height: 21,
        channels: 3,
        data: Uint8Array.from({ length: 29 * 21 * 3 }, (_, i) => (i % 87 < 40 ? noise() : i & 0xf0)),
      },
    ];
    const used = new Set<number>();
    for (const img of images) {
      const rows = filteredRows(encodePng(img));
      for (let y = 0; y < img.height; y++) used.add(rows[y * (img.width * img.channels + 1)]!);
      expect(rows).toEqual(referenceFilter(img));
    }
    expect(used.size).toBeGreaterThanOrEqual(3); // the images exercise several filter choices
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
