import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AppError } from '@atelier/common';
import { REQUIRED_MODEL_FILES } from './layout.ts';
import { CATALOGUE, catalogueEntry, downloadCatalogueModel, listFiles } from './catalogue.ts';
import { createModelStore } from './store.ts';

const entry = catalogueEntry('sd-turbo');
const gitOid = (b: Buffer) => createHash('sha1').update(`blob ${b.length}\0`).update(b).digest('hex');
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** The repository's files: the engine's folder (with its optional encoder) plus a file it does not need. */
const files = new Map<string, Buffer>();
for (const rel of [...REQUIRED_MODEL_FILES, 'vae_encoder/model.onnx', 'README.md']) {
  const big = rel.endsWith('.onnx');
  const body = big ? Buffer.alloc(rel.startsWith('unet') ? 300_000 : 5000) : Buffer.from(`{"file":"${rel}"}\n`);
  if (big) for (let i = 0; i < body.length; i++) body[i] = (i * 17 + rel.length) & 0xff;
  files.set(rel, body);
}
/** Large files are LFS (sha256 oid), small ones live in git (blob sha1 oid), as on the hub. */
/** What the catalogue downloads: the required files and the VAE encoder (image to image). */
const DOWNLOADED = [...REQUIRED_MODEL_FILES, 'vae_encoder/model.onnx'];
const tree = [...files].map(([p, b]) =>
  p.endsWith('.onnx')
    ? {
        type: 'file',
        path: p,
        size: 134,
        oid: 'f'.repeat(40),
        lfs: { oid: sha256(b), size: b.length, pointerSize: 134 },
      }
    : { type: 'file', path: p, size: b.length, oid: gitOid(b) },
);

let hub: string;
let server: http.Server;
const requests: { path: string; range: string | undefined }[] = [];
/** Paths whose next full response is cut after half its body. */
const dropOnce = new Set<string>();
/** Paths served with one byte changed. */
const tamper = new Set<string>();

beforeAll(async () => {
  server = http.createServer((req, res) => {
    const url = new URL(req.url!, 'http://x');
    requests.push({ path: url.pathname, range: req.headers.range });
    if (
      url.pathname === `/api/models/${entry.repo}/tree/${entry.revision}` &&
      url.searchParams.get('recursive') === 'true'
    ) {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(tree));
      return;
    }
    const prefix = `/${entry.repo}/resolve/${entry.revision}/`;
    const rel = url.pathname.startsWith(prefix) ? decodeURIComponent(url.pathname.slice(prefix.length)) : '';
    let body = files.get(rel);
    if (!body) {
      res.writeHead(404).end('Entry not found');
      return;
    }
    if (tamper.has(rel)) {
      body = Buffer.from(body);
      body[10] = body[10]! ^ 0xff;
    }
    const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    if (m) {
      const start = Number(m[1]);
      res.writeHead(206, {
        'content-length': body.length - start,
        'content-range': `bytes ${start}-${body.length - 1}/${body.length}`,
        'accept-ranges': 'bytes',
      });
      res.end(body.subarray(start));
      return;
    }
    res.writeHead(200, { 'content-length': body.length, 'accept-ranges': 'bytes' });
    if (dropOnce.delete(rel)) {
      res.write(body.subarray(0, body.length >> 1), () => res.destroy());
      return;
    }
    res.end(body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  hub = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

const tempStore = async () => {
  const modelsDir = await mkdtemp(path.join(os.tmpdir(), 'atelier-catalogue-'));
  return {
    modelsDir,
    store: createModelStore({ modelsDir, fixtureDirs: [], bundledDirs: [] }),
    done: () => rm(modelsDir, { recursive: true, force: true }),
  };
};

describe('model catalogue', () => {
  it('lists real ONNX Stable Diffusion exports by repository and pinned commit, with size, licence and hardware', () => {
    expect(CATALOGUE.map((e) => e.id)).toEqual(['sd-turbo', 'stable-diffusion-v1-5']);
    for (const e of CATALOGUE) {
      expect(e.revision).toMatch(/^[0-9a-f]{40}$/);
      expect(e.repo).toMatch(/^[\w.-]+\/[\w.-]+$/);
      expect(e.sizeBytes).toBeGreaterThan(1e9);
      expect(e.licence.url).toMatch(/^https:\/\//);
      expect(e.hardware.length).toBeGreaterThan(20);
    }
    expect(() => catalogueEntry('sdxl-turbo')).toThrow(AppError);
  });

  it('takes only the files the engine needs from the hub’s tree at the pinned commit', async () => {
    const list = await listFiles(entry, hub);
    expect(list.map((f) => f.path).sort()).toEqual([...DOWNLOADED].sort());
    expect(list.find((f) => f.path === 'unet/model.onnx')).toMatchObject({ size: 300_000, gitOid: null });
    expect(list.find((f) => f.path === 'model_index.json')?.sha256).toBeNull();
  });

  it('refuses a file list with a path that would leave the model folder', async () => {
    tree.push({ type: 'file', path: 'unet/../../escape.txt', size: 1, oid: 'a'.repeat(40) });
    try {
      await expect(listFiles(entry, hub)).rejects.toMatchObject({ code: 'DOWNLOAD_FAILED' });
    } finally {
      tree.pop();
    }
  });

  it('downloads file by file from <hub>/<repo>/resolve/<rev>/<path>, resumes a dropped file with Range, and installs the folder', async () => {
    const { store, modelsDir, done } = await tempStore();
    try {
      requests.length = 0;
      dropOnce.add('unet/model.onnx');
      const progress: number[] = [];
      const m = await downloadCatalogueModel(store, 'sd-turbo', {
        hub,
        retries: 2,
        onProgress: (p) => progress.push(p.receivedBytes),
      });
      expect(m).toMatchObject({ id: 'sd-turbo', kind: 'download', dir: path.join(modelsDir, 'sd-turbo') });
      for (const rel of REQUIRED_MODEL_FILES) expect(await readFile(path.join(m.dir, rel))).toEqual(files.get(rel));
      // The encoder comes too (image to image needs it); files the engine never opens do not.
      expect(await readFile(path.join(m.dir, 'vae_encoder/model.onnx'))).toEqual(files.get('vae_encoder/model.onnx'));
      expect(existsSync(path.join(m.dir, 'README.md'))).toBe(false);
      const unet = requests.filter((r) => r.path.endsWith('/unet/model.onnx'));
      expect(unet.map((r) => r.range)).toEqual([undefined, 'bytes=150000-']);
      expect(
        requests.every(
          (r) => r.path.startsWith('/api/') || r.path.startsWith(`/${entry.repo}/resolve/${entry.revision}/`),
        ),
      ).toBe(true);
      expect(progress.at(-1)).toBe(DOWNLOADED.reduce((n, p) => n + files.get(p)!.length, 0));
      expect((await store.list()).map((x) => x.id)).toEqual(['sd-turbo']);
      await expect(downloadCatalogueModel(store, 'sd-turbo', { hub })).rejects.toMatchObject({ code: 'CONFLICT' });
    } finally {
      await done();
    }
  });

  it('refuses bytes that do not match the pinned hashes and installs nothing', async () => {
    for (const rel of ['unet/model.onnx', 'tokenizer/vocab.json']) {
      const { store, done } = await tempStore();
      tamper.add(rel);
      try {
        const err = await downloadCatalogueModel(store, 'sd-turbo', { hub, retries: 0 }).catch((e: unknown) => e);
        expect(AppError.is(err, 'CHECKSUM_MISMATCH')).toBe(true);
        expect(await store.list()).toEqual([]);
      } finally {
        tamper.delete(rel);
        await done();
      }
    }
  });

  it('keeps finished files after an interruption and fetches only the rest on the next attempt', async () => {
    const { store, done } = await tempStore();
    try {
      const ac = new AbortController();
      await downloadCatalogueModel(store, 'sd-turbo', {
        hub,
        signal: ac.signal,
        onProgress: (p) => p.fileIndex === 2 && p.fileBytes === p.fileTotal && ac.abort(),
      }).catch(() => undefined);
      requests.length = 0;
      await downloadCatalogueModel(store, 'sd-turbo', { hub });
      const fetched = requests.filter((r) => r.path.includes('/resolve/')).length;
      expect(fetched).toBe(DOWNLOADED.length - 3);
    } finally {
      await done();
    }
  });
});
