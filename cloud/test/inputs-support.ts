/**
 * Shared by the inputs tests: real PNG starting images and masks, and the upload round trip a
 * client does (reserve → PUT through the presigned URL → complete).
 */
import { createHash } from 'node:crypto';
import { encodePng } from '@atelier/engine';
import type { CreateInputBody, CreateInputResponse } from '@atelier/common';
import { expect } from 'vitest';
import { putPresigned } from './sync-support.ts';
import { auth, type TestApp, type TestUser } from './support/index.ts';

export const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** A starting image: a red square on blue; each `seed` (0–199) shifts and tints it, so the bytes differ. */
export function startPng(width = 64, height = 64, seed = 0): Buffer {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) {
      const inside = x >= width / 4 + (seed % 8) && x < (3 * width) / 4 && y >= height / 4 && y < (3 * height) / 4;
      data.set(inside ? [220, 30 + seed, 30] : [30, 40, 200], (y * width + x) * 3);
    }
  return Buffer.from(encodePng({ width, height, channels: 3, data }));
}

/** A mask: white (repaint) over the left half, black elsewhere. */
export function maskPng(width = 64, height = 64): Buffer {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width / 2; x++) data.fill(255, (y * width + x) * 3, (y * width + x) * 3 + 3);
  return Buffer.from(encodePng({ width, height, channels: 3, data }));
}

export function inputBody(
  bytes: Buffer,
  purpose: 'init' | 'mask',
  over: Partial<CreateInputBody> = {},
): CreateInputBody {
  return {
    purpose,
    contentType: 'image/png',
    byteLength: bytes.byteLength,
    sha256: sha256(bytes),
    width: 64,
    height: 64,
    ...over,
  };
}

/** Reserve, PUT and complete; returns the input id. */
export async function uploadInput(
  app: TestApp['app'],
  u: TestUser,
  bytes: Buffer,
  purpose: 'init' | 'mask',
  over: Partial<CreateInputBody> = {},
): Promise<string> {
  const res = await app.inject({
    method: 'POST',
    url: '/v1/inputs',
    headers: auth(u),
    payload: inputBody(bytes, purpose, over),
  });
  expect(res.statusCode).toBe(201);
  const created = res.json() as CreateInputResponse;
  expect(await putPresigned(created.upload, bytes)).toBe(200);
  const done = await app.inject({ method: 'POST', url: `/v1/inputs/${created.inputId}/complete`, headers: auth(u) });
  expect(done.statusCode).toBe(200);
  expect(done.json().status).toBe('ready');
  return created.inputId;
}
