/**
 * Thumbnails at once, full images in the background or on demand (issue 13, decision 0148),
 * against the real pieces: the Fastify API on Postgres with RLS, cognito-local, and s3rver behind
 * a SigV4-verifying proxy. A second profile of the same user pulls the gallery: its rows and
 * thumbnails exist before any full PNG has arrived; the background downloader then fetches every
 * PNG (checked by sha256) and survives a restart from SQLite; a deleted image is never fetched;
 * opening one image fetches it ahead of the queue; offline says so and Retry works.
 */
import { openSyncDevice, type SyncDevice } from './sync-device.ts';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { AppError } from '@atelier/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLibraryHandlers } from '../../src-main/services/handlers/library.ts';
import type { SyncCloudPort } from '../../src-main/services/sync/sync-engine.ts';
import { makePng, sampleMetadata } from '../../src-main/services/testing/png-fixture.ts';
import { createTestUser, type TestUser, stackCognito } from '../../cloud/test/support/index.ts';
import { startSyncHarness, type SyncHarness } from '../../cloud/test/sync-support.ts';

let h: SyncHarness;
let apiUrl: string;
const dirs: string[] = [];
const open: Device[] = [];

type Device = SyncDevice;

/** Is this presigned URL one of a full image (users/{sub}/images/…), not a thumbnail? */
const isFull = (url: string) => /\/images\/img_[^/?]+\.png/.test(new URL(url).pathname);
const cloudIdOf = (url: string) => /\/(img_[^/?.]+)\.png/.exec(new URL(url).pathname)![1]!;

/** Every progress report of a full image someone waits for: [local id, received, total]. */
const progressed: [string, number, number | null][] = [];
async function device(user: TestUser, wrap?: (p: SyncCloudPort) => SyncCloudPort, dir?: string): Promise<Device> {
  const d = await openSyncDevice({
    apiUrl,
    cognito: stackCognito(),
    user,
    wrap,
    dir,
    backoffMs: 10,
    concurrency: 2,
    onDownloadProgress: (id, received, total) => progressed.push([id, received, total]),
  });
  if (!dirs.includes(d.dir)) dirs.push(d.dir);
  open.push(d);
  return d;
}

/** Full-image downloads held until released, per cloud image id (thumbnails pass). */
function gate() {
  const held = new Map<string, () => void>();
  const released = new Set<string>();
  const requested: string[] = [];
  let all = false;
  return {
    requested,
    wrap: (p: SyncCloudPort): SyncCloudPort => {
      const hold = async (url: string) => {
        if (isFull(url)) {
          const id = cloudIdOf(url);
          requested.push(id);
          if (!all && !released.has(id)) await new Promise<void>((r) => held.set(id, r));
        }
      };
      return {
        ...p,
        download: async (url) => (await hold(url), p.download(url)),
        downloadFile: async (url, ...rest) => (await hold(url), p.downloadFile(url, ...rest)),
      };
    },
    release(id: string) {
      released.add(id);
      held.get(id)?.();
    },
    releaseAll() {
      all = true;
      for (const r of held.values()) r();
    },
  };
}

let colour = 3;
function addLocal(d: Device, prompt: string) {
  colour += 11;
  const png = makePng({
    width: 320,
    height: 240,
    rgb: [colour % 256, (colour * 7) % 256, (colour * 13) % 256],
    text: { invokeai_metadata: JSON.stringify(sampleMetadata(prompt, colour)) },
  });
  return d.library.addImage({ png, origin: 'local' });
}

interface Row {
  id: string;
  cloud_id: string;
  prompt: string;
  sha256: string;
  file_name: string;
  full_pending: number;
  deleted_at: string | null;
}
const rows = (d: Device) =>
  d.db
    .prepare('SELECT id, cloud_id, prompt, sha256, file_name, full_pending, deleted_at FROM images ORDER BY prompt')
    .all() as Row[];
const fileOf = (d: Device, r: Row) => path.join(d.dir, 'images', r.file_name);
const thumbFileOf = (d: Device, r: Row) => path.join(d.dir, 'images', r.file_name.replace(/\.png$/, '.thumb.png'));
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
/** The PNG on disk is exactly the one the first device made. */
const sameBytes = (d: Device, r: Row) => existsSync(fileOf(d, r)) && sha(readFileSync(fileOf(d, r))) === r.sha256;

beforeAll(async () => {
  h = await startSyncHarness();
  await h.t.app.listen({ port: 0, host: '127.0.0.1' });
  apiUrl = `http://127.0.0.1:${(h.t.app.server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  for (const d of open) {
    try {
      d.close();
    } catch {
      // closed by the test already
    }
  }
  await h?.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('pulling a gallery: thumbnails first, full images after', () => {
  it('shows every row with its thumbnail before any full image arrives, then downloads them all', async () => {
    const user = await createTestUser();
    const a = await device(user);
    for (const p of ['a fox', 'a heron', 'a lynx', 'a moth']) addLocal(a, p);
    await a.engine.syncOnce();
    expect(a.engine.pending()).toBe(0);

    const g = gate();
    const b = await device(user, g.wrap);
    await b.engine.syncOnce();
    // The pass is over while every full download is still held: the gallery is already complete.
    expect(b.engine.status()).toMatchObject({ state: 'idle', error: null });
    const pulled = rows(b);
    expect(pulled.map((r) => r.prompt)).toEqual(['a fox', 'a heron', 'a lynx', 'a moth']);
    for (const r of pulled) {
      expect(r.full_pending).toBe(1);
      expect(existsSync(thumbFileOf(b, r))).toBe(true);
      expect(existsSync(fileOf(b, r))).toBe(false);
    }
    const page = b.library.list({ limit: 100 });
    expect(page.total).toBe(4);
    expect(page.items.every((i) => i.downloaded === false && i.thumbUrl.endsWith('.thumb.png'))).toBe(true);
    // Nothing hands out the missing file.
    expect(() => b.library.pathOf(pulled[0]!.id)).toThrow(expect.objectContaining({ code: 'IMAGE_NOT_DOWNLOADED' }));
    expect(b.engine.status().downloads).toMatchObject({ done: 0, waiting: 4, total: 4 });

    g.releaseAll();
    await b.engine.downloadsSettled();
    for (const r of rows(b)) {
      expect(r.full_pending).toBe(0);
      expect(sameBytes(b, r)).toBe(true);
    }
    expect(b.library.list({ limit: 100 }).items.some((i) => i.downloaded === false)).toBe(false);
    expect(b.engine.status().downloads).toMatchObject({ waiting: 0 });
    // Each full image was asked for once: no duplicate downloads.
    expect(new Set(g.requested).size).toBe(4);
    expect(g.requested).toHaveLength(4);
  });

  it('resumes the downloads after the app stopped half-way (the queue is in SQLite)', async () => {
    const user = await createTestUser();
    const a = await device(user);
    for (const p of ['one', 'two', 'three', 'four', 'five']) addLocal(a, p);
    await a.engine.syncOnce();

    const g = gate();
    const b = await device(user, g.wrap);
    await b.engine.syncOnce();
    // One full image arrives, then the app stops with the others in flight.
    const first = rows(b)[0]!;
    const fetching = b.library.localPath(first.id);
    g.release(first.cloud_id);
    await fetching;
    b.close();

    // A new start on the same folder: the first image is kept, the rest come down, no new rows.
    const again = await device(user, undefined, b.dir);
    expect(again.library.repair()).toEqual({ removedFiles: expect.any(Number), removedRows: 0 });
    expect(rows(again).filter((r) => r.full_pending === 1)).toHaveLength(4);
    await again.engine.syncOnce();
    await again.engine.downloadsSettled();
    const after = rows(again);
    expect(after).toHaveLength(5);
    expect(after.every((r) => r.full_pending === 0 && sameBytes(again, r))).toBe(true);
  });

  it('never downloads an image deleted in the cloud before its turn, and goes on after being offline', async () => {
    const user = await createTestUser();
    const a = await device(user);
    for (const p of ['keep me', 'delete me', 'keep me too']) addLocal(a, p);
    await a.engine.syncOnce();

    // B pulls while S3 is unreachable: rows and thumbnails arrive, full images cannot.
    let offline = true;
    const requested: string[] = [];
    const cut = (url: string) => {
      if (isFull(url)) {
        requested.push(cloudIdOf(url));
        if (offline) throw new AppError('OFFLINE', 'connect ECONNREFUSED');
      }
    };
    const b = await device(user, (p) => ({
      ...p,
      download: async (url) => (cut(url), p.download(url)),
      downloadFile: async (url, ...rest) => (cut(url), p.downloadFile(url, ...rest)),
    }));
    await b.engine.syncOnce();
    await b.engine.downloadsSettled();
    expect(rows(b).every((r) => r.full_pending === 1)).toBe(true);
    const failed = b.db.prepare('SELECT download_error FROM images WHERE download_error IS NOT NULL').all();
    expect(failed.length).toBeGreaterThan(0);
    requested.length = 0;

    // A deletes one; B comes back online and syncs: the tombstone lands, the rest download.
    const doomed = a.db.prepare("SELECT id FROM images WHERE prompt = 'delete me'").get() as { id: string };
    a.library.delete([doomed.id]);
    a.engine.recordEdit('image', doomed.id, 'deleted', true);
    await a.engine.syncOnce();
    const doomedCloud = (
      a.db.prepare('SELECT cloud_id FROM images WHERE id = ?').get(doomed.id) as {
        cloud_id: string;
      }
    ).cloud_id;
    offline = false;
    for (let i = 0; i < 3; i++) await b.engine.syncOnce();
    await b.engine.downloadsSettled();
    const byPrompt = Object.fromEntries(rows(b).map((r) => [r.prompt, r]));
    expect(byPrompt['delete me']!.deleted_at).not.toBeNull();
    expect(existsSync(fileOf(b, byPrompt['delete me']!))).toBe(false);
    expect(requested).not.toContain(doomedCloud);
    expect(sameBytes(b, byPrompt['keep me']!) && sameBytes(b, byPrompt['keep me too']!)).toBe(true);
  });
});

describe('opening an image that is not downloaded yet', () => {
  it('fetches it ahead of the background queue', async () => {
    const user = await createTestUser();
    const a = await device(user);
    for (const p of ['oldest', 'middle', 'newest']) addLocal(a, p);
    await a.engine.syncOnce();

    const g = gate();
    const b = await device(user, g.wrap);
    await b.engine.syncOnce(); // the downloader now waits on its first two (newest first)
    // The background downloader goes newest first (the gallery's order): the last in its queue.
    const [wanted, ...others] = rows(b).sort((x, y) => (x.id < y.id ? -1 : 1));
    const handlers = createLibraryHandlers({
      library: b.library,
      sync: { recordEdit: () => undefined },
      emit: () => undefined,
    });
    progressed.length = 0;
    const opening = handlers['library:download']({ id: wanted!.id });
    g.release(wanted!.cloud_id);
    const image = await opening;
    expect(image.downloaded).toBeUndefined();
    // The Viewer heard how much had arrived, up to the whole file; the background ones say nothing.
    const size = readFileSync(
      fileOf(
        b,
        rows(b).find((r) => r.id === wanted!.id)!,
      ),
    ).byteLength;
    expect(progressed.length).toBeGreaterThan(0);
    expect(progressed.every(([id]) => id === wanted!.id)).toBe(true);
    expect(progressed.at(-1)).toEqual([wanted!.id, size, size]);
    expect(
      sameBytes(
        b,
        rows(b).find((r) => r.id === wanted!.id)!,
      ),
    ).toBe(true);
    // The background queue is still held on the others: the opened one went first.
    expect(
      rows(b)
        .filter((r) => r.full_pending === 1)
        .map((r) => r.prompt),
    ).toEqual(others.map((r) => r.prompt).sort());
    // Reveal (and a starting image) get a file that exists.
    expect(existsSync((await handlers['library:reveal']({ id: wanted!.id })).path)).toBe(true);
    g.releaseAll();
    await b.engine.downloadsSettled();
  });

  it('says "offline" with an error a person can act on, and Retry works once back', async () => {
    const user = await createTestUser();
    const a = await device(user);
    addLocal(a, 'far away');
    await a.engine.syncOnce();

    let offline = false;
    const g = gate();
    // Held first, then the network answers (or not) when the download is let through.
    const b = await device(user, (p) =>
      g.wrap({
        ...p,
        async download(url) {
          if (offline && isFull(url)) throw new AppError('OFFLINE', 'getaddrinfo ENOTFOUND');
          return p.download(url);
        },
        async downloadFile(url, ...rest) {
          if (offline && isFull(url)) throw new AppError('OFFLINE', 'getaddrinfo ENOTFOUND');
          return p.downloadFile(url, ...rest);
        },
      }),
    );
    await b.engine.syncOnce(); // the thumbnail arrives; the full download is held
    const r = rows(b)[0]!;
    offline = true;
    b.engine.pause(); // the held background download gives up its turn
    g.releaseAll();
    await b.engine.downloadsSettled();

    const handlers = createLibraryHandlers({
      library: b.library,
      sync: { recordEdit: () => undefined },
      emit: () => undefined,
    });
    const err = await handlers['library:download']({ id: r.id }).catch((e: unknown) => e);
    expect(AppError.is(err, 'IMAGE_NOT_DOWNLOADED')).toBe(true);
    expect(err).toMatchObject({ code: 'IMAGE_NOT_DOWNLOADED', retryable: true });
    expect((err as AppError).userMessage).toMatch(/offline.*connect to the internet and try again/i);
    expect(existsSync(fileOf(b, r))).toBe(false);

    offline = false;
    const image = await handlers['library:download']({ id: r.id });
    expect(image.downloaded).toBeUndefined();
    expect(sameBytes(b, rows(b)[0]!)).toBe(true);
  });
});
