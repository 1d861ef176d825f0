/** Builds small real PNGs (solid colour, optional tEXt chunks) for tests and benchmarks. */
import { crc32, deflateSync } from 'node:zlib';
import type { ImageMetadata } from '@atelier/common';

export function chunk(type: string, data: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body) >>> 0);
  return Buffer.concat([len, body, crc]);
}

export function makePng(
  opts: { width?: number; height?: number; rgb?: [number, number, number]; text?: Record<string, string> } = {},
): Buffer {
  const width = opts.width ?? 8;
  const height = opts.height ?? 8;
  const [r, g, b] = opts.rgb ?? [200, 100, 50];
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // colour type RGB
  const raw = Buffer.alloc((width * 3 + 1) * height);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) raw.set([r, g, b], y * (width * 3 + 1) + 1 + x * 3);
  const texts = Object.entries(opts.text ?? {}).map(([k, v]) =>
    chunk('tEXt', Buffer.concat([Buffer.from(k, 'latin1'), Buffer.from([0]), Buffer.from(v, 'latin1')])),
  );
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    ...texts,
    chunk('IDAT', deflateSync(raw)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

export function sampleMetadata(prompt: string, seed = 42): ImageMetadata {
  return {
    positive_prompt: prompt,
    negative_prompt: '',
    seed,
    steps: 4,
    cfg_scale: 7.5,
    scheduler: 'euler_a',
    width: 8,
    height: 8,
    model: { name: 'fixture-tiny' },
    generation_mode: 'txt2img',
    app_version: '0.1.0',
  };
}

export function pngWithMetadata(prompt: string, seed = 42): Buffer {
  return makePng({ text: { invokeai_metadata: JSON.stringify(sampleMetadata(prompt, seed)) } });
}
