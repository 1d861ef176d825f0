import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AppError } from '@atelier/common';
import { REQUIRED_MODEL_FILES } from './layout.ts';
import { createModelStore } from './store.ts';
import { STATE_FILE } from './state.ts';

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** A structurally complete model folder (the store checks structure; the engine checks graphs). */
async function makeModelFolder(dir: string, seed: number): Promise<Map<string, Buffer>> {
  const files = new Map<string, Buffer>();
  for (const rel of REQUIRED_MODEL_FILES) {
    let body: Buffer;
    if (rel.endsWith('.json')) body = Buffer.from(JSON.stringify({ seed, file: rel }));
    else if (rel.endsWith('.onnx')) {
      // Big enough that a dropped connection happens mid-file.
      body = Buffer.alloc(rel.startsWith('unet') ? 256 * 1024 : 4096);
      for (let i = 0; i < body.length; i++) body[i] = (i * 31 + seed) & 0xff;
    } else body = Buffer.from(`${rel} ${seed}\n`);
    files.set(rel, body);
    await mkdir(path.dirname(path.join(dir, rel)), { recursive: true });
    await writeFile(path.join(dir, rel), body);
  }
  return files;
}

interface ServerControl {
  url: string;
  /** Paths whose next full (non-Range) response is cut after half the body. */
  dropOnce: Set<string>;
  /** Paths whose responses stall after half the body until the client goes away. */
  stall: Set<string>;
  /** Every request: path and Range header. */
  log: { path: string; range: string | undefined }[];
  files: Map<string, Buffer>;
  close(): Promise<void>;
}

async function startServer(files: Map<string, Buffer>): Promise<ServerControl> {
  const ctl = { dropOnce: new Set<string>(), stall: new Set<string>(), log: [], files } as unknown as ServerControl;
  const server = http.createServer((req, res) => {
    const p = decodeURIComponent(new URL(req.url!, 'http://x').pathname.slice(1));
    ctl.log.push({ path: p, range: req.headers.range });
    const body = ctl.files.get(p);
    if (!body) {
      res.writeHead(404).end();
      return;
    }
    let start = 0;
    const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    if (m) {
      start = Number(m[1]);
      if (start >= body.length) {
        res.writeHead(416, { 'content-range': `bytes */${body.length}` }).end();
        return;
      }
      res.writeHead(206, {
        'content-length': body.length - start,
        'content-range': `bytes ${start}-${body.length - 1}/${body.length}`,
        'accept-ranges': 'bytes',
      });
    } else res.writeHead(200, { 'content-length': body.length, 'accept-ranges': 'bytes' });
    const rest = body.subarray(start);
    if (ctl.stall.has(p)) {
      res.write(rest.subarray(0, rest.length >> 1));
      return; // never ends: the client cancels
    }
    if (!m && ctl.dropOnce.delete(p)) {
      res.write(rest.subarray(0, rest.length >> 1), () => res.socket?.destroy());
      return;
    }
    res.end(rest);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  ctl.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  ctl.close = () =>
    new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    });
  return ctl;
}

function manifestFor(files: Map<string, Buffer>, prefix: string, overrides: Record<string, string> = {}) {
  return {
    name: 'Test model',
    files: [...files].map(([rel, body]) => ({
      path: rel,
      url: `${prefix}/${rel}`,
      sha256: overrides[rel] ?? sha(body),
      size: body.length,
    })),
  };
}

let tmp: string;
let server: ServerControl;
let source: Map<string, Buffer>;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'atelier-store-'));
  source = await makeModelFolder(path.join(tmp, 'src', 'My Model'), 1);
  const served = new Map<string, Buffer>();
  for (const [rel, body] of source) served.set(`m/${rel}`, body);
  served.set('good.json', Buffer.from(JSON.stringify({ ...manifestFor(source, 'm'), id: 'downloaded' })));
  served.set(
    'bad.json',
    Buffer.from(
      JSON.stringify({ ...manifestFor(source, 'm', { 'unet/model.onnx': 'ab'.repeat(32) }), id: 'bad-checksum' }),
    ),
  );
  served.set('stall.json', Buffer.from(JSON.stringify({ ...manifestFor(source, 'm'), id: 'stalled' })));
  server = await startServer(served);
});
afterAll(async () => {
  await server?.close();
  await rm(tmp, { recursive: true, force: true });
});

describe('model store', () => {
  it('imports by copy and by link, lists with size and hash, and keeps it across a restart', async () => {
    const modelsDir = path.join(tmp, 'models-a');
    const fixtures = path.join(tmp, 'fixtures-a');
    await makeModelFolder(path.join(fixtures, 'atelier-fixture-sd'), 7);
    const store = createModelStore({ modelsDir, bundledDirs: [], fixtureDirs: [fixtures] });

    const copied = await store.importFolder(path.join(tmp, 'src', 'My Model'));
    expect(copied).toMatchObject({ id: 'my-model', kind: 'copy', root: 'user' });
    expect(copied.size).toBe([...source.values()].reduce((n, b) => n + b.length, 0));
    expect(copied.sha256).toMatch(/^[0-9a-f]{64}$/);
    const linked = await store.importFolder(path.join(tmp, 'src', 'My Model'), { link: true, id: 'linked' });
    expect(linked).toMatchObject({ id: 'linked', kind: 'link', sha256: copied.sha256 });
    expect(linked.dir).toBe(path.join(tmp, 'src', 'My Model'));

    // Nothing chosen: the fixture model is the default.
    expect((await store.defaultModel())?.id).toBe('atelier-fixture-sd');
    await store.setDefault('my-model');

    const restarted = createModelStore({ modelsDir, bundledDirs: [], fixtureDirs: [fixtures] });
    const listed = await restarted.list();
    expect(listed.map((m) => [m.id, m.root, m.isDefault])).toEqual([
      ['atelier-fixture-sd', 'fixtures', false],
      ['linked', 'user', false],
      ['my-model', 'user', true],
    ]);
    const state = JSON.parse(await readFile(path.join(modelsDir, STATE_FILE), 'utf8'));
    expect(state.defaultModel).toBe('my-model');
    expect(Object.values(state.hashes).map((h) => (h as { sha256: string }).sha256)).toContain(copied.sha256);

    // Removing a link leaves the user's folder alone; the default falls back to the fixture.
    await restarted.remove('linked');
    await restarted.remove('my-model');
    expect(existsSync(path.join(tmp, 'src', 'My Model', 'model_index.json'))).toBe(true);
    expect((await restarted.list()).map((m) => m.id)).toEqual(['atelier-fixture-sd']);
    expect((await restarted.defaultModel())?.id).toBe('atelier-fixture-sd');
    await expect(restarted.remove('atelier-fixture-sd')).rejects.toMatchObject({ code: 'FORBIDDEN' });
    await expect(restarted.resolve('nope')).rejects.toMatchObject({ code: 'ENGINE_MODEL_NOT_FOUND' });
  });

  it('refuses an incomplete folder naming what is missing, and a duplicate id', async () => {
    const modelsDir = path.join(tmp, 'models-b');
    const store = createModelStore({ modelsDir, bundledDirs: [], fixtureDirs: [] });
    const broken = path.join(tmp, 'broken');
    await makeModelFolder(broken, 2);
    await rm(path.join(broken, 'unet'), { recursive: true });
    await writeFile(path.join(broken, 'scheduler/scheduler_config.json'), '{ not json');
    const e = await store.importFolder(broken).catch((x: unknown) => x);
    expect(AppError.is(e, 'ENGINE_MODEL_INVALID')).toBe(true);
    expect((e as AppError).message).toContain('unet/model.onnx is missing');
    expect((e as AppError).message).toContain('scheduler/scheduler_config.json is not valid JSON');
    expect(await readdir(modelsDir).catch(() => [])).not.toContain('broken');

    await store.importFolder(path.join(tmp, 'src', 'My Model'));
    await expect(store.importFolder(path.join(tmp, 'src', 'My Model'))).rejects.toMatchObject({ code: 'CONFLICT' });
  });

  it('downloads a manifest, resuming with Range after the connection drops mid-file', async () => {
    const modelsDir = path.join(tmp, 'models-c');
    const store = createModelStore({ modelsDir, bundledDirs: [], fixtureDirs: [] });
    server.dropOnce.add('m/unet/model.onnx');
    server.log.length = 0;
    const progress: number[] = [];
    const manifestBytes = server.files.get('good.json')!;
    const entry = await store.download(`${server.url}/good.json`, {
      sha256: sha(manifestBytes),
      onProgress: (p) => progress.push(p.receivedBytes),
    });
    expect(entry.id).toBe('downloaded');
    const unet = source.get('unet/model.onnx')!;
    const unetRequests = server.log.filter((r) => r.path === 'm/unet/model.onnx');
    expect(unetRequests).toHaveLength(2);
    expect(unetRequests[0]!.range).toBeUndefined();
    const resumedAt = Number(/bytes=(\d+)-/.exec(unetRequests[1]!.range ?? '')?.[1]);
    expect(resumedAt).toBeGreaterThan(0);
    expect(resumedAt).toBeLessThan(unet.length);
    expect(sha(await readFile(path.join(modelsDir, 'downloaded', 'unet/model.onnx')))).toBe(sha(unet));
    expect(progress.at(-1)).toBe(entry.size);
    expect(progress.every((v, i) => i === 0 || v >= progress[i - 1]!)).toBe(true);
    // Same content as the imported copy → same hash.
    const imported = await store.importFolder(path.join(tmp, 'src', 'My Model'));
    expect(entry.sha256).toBe(imported.sha256);
    expect(await readdir(path.join(modelsDir, '.partial'))).toEqual([]);
  });

  it('deletes a file whose sha256 does not match and reports CHECKSUM_MISMATCH', async () => {
    const modelsDir = path.join(tmp, 'models-d');
    const store = createModelStore({ modelsDir, bundledDirs: [], fixtureDirs: [] });
    const e = await store.download(`${server.url}/bad.json`).catch((x: unknown) => x);
    expect(AppError.is(e, 'CHECKSUM_MISMATCH')).toBe(true);
    expect((e as AppError).message).toContain('model.onnx');
    const partial = path.join(modelsDir, '.partial');
    const [staging] = await readdir(partial);
    const left = await readdir(path.join(partial, staging!, 'unet')).catch(() => []);
    expect(left).toEqual([]);
    expect((await store.list()).map((m) => m.id)).toEqual([]);
    // A wrong manifest pin is refused before anything is fetched.
    await expect(store.download(`${server.url}/good.json`, { sha256: '0'.repeat(64) })).rejects.toMatchObject({
      code: 'CHECKSUM_MISMATCH',
    });
  });

  it('cancels through an AbortSignal, keeps the part, and resumes it on the next run', async () => {
    const modelsDir = path.join(tmp, 'models-e');
    const store = createModelStore({ modelsDir, bundledDirs: [], fixtureDirs: [] });
    server.stall.add('m/unet/model.onnx');
    const ac = new AbortController();
    const e = await store
      .download(`${server.url}/stall.json`, {
        signal: ac.signal,
        onProgress: (p) => {
          if (p.file === 'unet/model.onnx' && p.fileBytes > 0 && p.fileBytes < p.fileTotal) ac.abort();
        },
      })
      .catch((x: unknown) => x);
    expect(AppError.is(e, 'CANCELED')).toBe(true);
    const [staging] = await readdir(path.join(modelsDir, '.partial'));
    const part = path.join(modelsDir, '.partial', staging!, 'unet', 'model.onnx.part');
    const partSize = (await stat(part)).size;
    expect(partSize).toBeGreaterThan(0);

    server.stall.delete('m/unet/model.onnx');
    server.log.length = 0;
    const entry = await createModelStore({ modelsDir, bundledDirs: [], fixtureDirs: [] }).download(
      `${server.url}/stall.json`,
    );
    expect(entry.id).toBe('stalled');
    const unetRequests = server.log.filter((r) => r.path === 'm/unet/model.onnx');
    expect(unetRequests.map((r) => r.range)).toEqual([`bytes=${partSize}-`]);
    // Files finished before the cancel were not fetched again.
    expect(server.log.some((r) => r.path === 'm/model_index.json')).toBe(false);
    expect(sha(await readFile(path.join(entry.dir, 'unet/model.onnx')))).toBe(sha(source.get('unet/model.onnx')!));
  });
});
