/**
 * Two desktop profiles of one user (two library folders, each with its own SQLite library, cloud
 * client and sync engine) against the real pieces: the Fastify API on Postgres with RLS,
 * cognito-local, and s3rver behind a SigV4-verifying proxy. They converge after creating,
 * starring, moving, renaming and deleting on each side — including the same image edited on both
 * while one was offline — a third profile signed in as another user sees none of it, and an
 * upload interrupted after its reservation resumes in a restarted engine into exactly one object
 * and one record.
 */
import { openSyncDevice, type SyncDevice } from './sync-device.ts';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { decodePng, encodePng } from '@atelier/engine';
import { AppError } from '@atelier/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../src-main/services/clock.ts';
import { openDatabase } from '../../src-main/services/db.ts';
import { createLibrary } from '../../src-main/services/library.ts';
import type { SyncCloudPort } from '../../src-main/services/sync/sync-engine.ts';
import { makePng, sampleMetadata } from '../../src-main/services/testing/png-fixture.ts';
import { createTestUser, stackInfo, type TestUser, stackCognito } from '../../cloud/test/support/index.ts';
import { startSyncHarness, type SyncHarness } from '../../cloud/test/sync-support.ts';

let h: SyncHarness;
let apiUrl: string;
let alice: TestUser;
let mallory: TestUser;
const dirs: string[] = [];
const profiles: Profile[] = [];

type Profile = SyncDevice;

async function profile(user: TestUser, wrap?: (p: SyncCloudPort) => SyncCloudPort, dir?: string): Promise<Profile> {
  const prof = await openSyncDevice({
    apiUrl,
    cognito: stackCognito(),
    user,
    wrap,
    dir,
    backoffMs: 20,
    concurrency: 3,
  });
  dirs.push(prof.dir);
  profiles.push(prof);
  return prof;
}

/** The library keeps an image's thumbnail beside it (img_X.thumb.png). */
const thumbOf = (p: Profile, id: string) => path.join(p.dir, 'images', `${id}.thumb.png`);

let colour = 10;
function addLocal(p: Profile, prompt: string) {
  colour += 7;
  const png = makePng({
    width: 512,
    height: 384,
    rgb: [colour % 256, (colour * 3) % 256, (colour * 5) % 256],
    text: { invokeai_metadata: JSON.stringify(sampleMetadata(prompt, colour)) },
  });
  return p.library.addImage({ png, origin: 'local' });
}

/** The gallery as a person sees it: prompt → starred, board name. */
function view(p: Profile) {
  const rows = p.db
    .prepare(
      `SELECT i.prompt, i.starred, b.name AS board, i.sha256 FROM images i LEFT JOIN boards b ON b.id = i.board_id
        WHERE i.deleted_at IS NULL ORDER BY i.sha256`,
    )
    .all() as { prompt: string; starred: number; board: string | null; sha256: string }[];
  return rows.map((r) => `${r.prompt}|${r.starred ? '★' : '☆'}|${r.board ?? '-'}|${r.sha256.slice(0, 8)}`);
}

const boardsOf = (p: Profile) =>
  (p.db.prepare('SELECT name FROM boards WHERE deleted_at IS NULL ORDER BY name').all() as { name: string }[]).map(
    (r) => r.name,
  );

/** Passes until both profiles have nothing left to send or apply (the feed lags open transactions a moment). */
async function converge(...ps: Profile[]) {
  for (let i = 0; i < 6; i++) for (const p of ps) await p.engine.syncOnce();
}

beforeAll(async () => {
  h = await startSyncHarness();
  await h.t.app.listen({ port: 0, host: '127.0.0.1' });
  apiUrl = `http://127.0.0.1:${(h.t.app.server.address() as AddressInfo).port}`;
  [alice, mallory] = await Promise.all([createTestUser(), createTestUser()]);
});
afterAll(async () => {
  for (const p of profiles) p.close();
  await h?.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function bucketKeys(prefix: string): Promise<string[]> {
  const res = await fetch(`${h.s3.endpoint}/${h.s3.bucket}?list-type=2&prefix=${encodeURIComponent(prefix)}`);
  return [...(await res.text()).matchAll(/<Key>([^<]+)<\/Key>/g)].map((m) => m[1]!).sort();
}

describe('two profiles of one user', () => {
  let a: Profile;
  let b: Profile;

  it('uploads from A with real thumbnails and downloads to B', async () => {
    [a, b] = [await profile(alice), await profile(alice)];
    const made = ['a red fox', 'a blue whale', 'a green field', 'a quiet lake'].map((p) => addLocal(a, p));
    expect(a.engine.pending()).toBe(4);
    await a.engine.syncOnce();
    expect(a.engine.status()).toMatchObject({ state: 'idle', error: null });
    // "4 of 4": the pass pulled its own uploads back in the feed without counting them again.
    expect(a.engine.status()).toMatchObject({ done: 4, total: 4 });
    expect(a.engine.pending()).toBe(0);
    const cloudIds = (a.db.prepare('SELECT cloud_id FROM images ORDER BY id').all() as { cloud_id: string }[]).map(
      (r) => r.cloud_id,
    );
    expect(cloudIds.every((id) => /^img_/.test(id))).toBe(true);
    // Every image is one PNG and one thumbnail under Alice's prefix, nothing else.
    expect(await bucketKeys(`users/${alice.sub}/`)).toHaveLength(8);
    // The thumbnail is a real, smaller PNG made once.
    const thumb = decodePng(readFileSync(thumbOf(a, made[0]!.id)));
    expect([thumb.width, thumb.height]).toEqual([256, 192]);

    await b.engine.syncOnce();
    expect(b.engine.status()).toMatchObject({ done: 4, total: 4 });
    expect(view(b)).toEqual(view(a));
    expect(view(b)).toHaveLength(4);
    const bRow = b.db.prepare("SELECT id, origin FROM images WHERE prompt = 'a red fox'").get() as {
      id: string;
      origin: string;
    };
    expect(bRow.origin).toBe('cloud');
    expect(decodePng(readFileSync(thumbOf(b, bRow.id))).width).toBe(256);
    // Same bytes on both sides.
    const aSha = a.db.prepare("SELECT sha256 FROM images WHERE prompt = 'a red fox'").get();
    expect(b.db.prepare("SELECT sha256 FROM images WHERE prompt = 'a red fox'").get()).toEqual(aSha);
    // A second pass on A moves nothing (no duplicates on either side).
    await a.engine.syncOnce();
    expect(await bucketKeys(`users/${alice.sub}/`)).toHaveLength(8);
    expect(view(a)).toHaveLength(4);
  });

  it('stars, boards, renames and deletes flow both ways', async () => {
    const id = (p: Profile, prompt: string) =>
      (p.db.prepare('SELECT id FROM images WHERE prompt = ? AND deleted_at IS NULL').get(prompt) as { id: string }).id;
    // A: a board with the fox on it, the whale starred.
    const board = a.library.boards.create('Animals');
    a.engine.recordEdit('board', board.id, 'create', 'Animals');
    a.library.update([id(a, 'a red fox')], { boardId: board.id });
    a.engine.recordEdit('image', id(a, 'a red fox'), 'boardId', board.id);
    a.library.update([id(a, 'a blue whale')], { starred: true });
    a.engine.recordEdit('image', id(a, 'a blue whale'), 'starred', true);
    // B: deletes the lake, made a new local image.
    const lake = id(b, 'a quiet lake');
    b.library.delete([lake]);
    b.engine.recordEdit('image', lake, 'deleted', true);
    addLocal(b, 'a snowy peak');
    await converge(a, b);
    // B renames the board A made.
    b.library.boards.rename(board.id, 'Wild animals');
    b.engine.recordEdit('board', board.id, 'name', 'Wild animals');
    await converge(b, a);

    expect(view(a)).toEqual(view(b));
    expect(view(a).map((r) => r.split('|').slice(0, 3).join('|'))).toEqual(
      expect.arrayContaining(['a red fox|☆|Wild animals', 'a blue whale|★|-', 'a green field|☆|-', 'a snowy peak|☆|-']),
    );
    expect(view(a).some((r) => r.startsWith('a quiet lake'))).toBe(false);
    expect(boardsOf(a)).toEqual(['Wild animals']);
    expect(boardsOf(b)).toEqual(['Wild animals']);
  });

  it('the same image edited on both sides while A was offline ends the same on both (last writer wins)', async () => {
    const id = (p: Profile, prompt: string) =>
      (p.db.prepare('SELECT id FROM images WHERE prompt = ? AND deleted_at IS NULL').get(prompt) as { id: string }).id;
    // A, offline (no pass), stars the field and takes the whale's star off.
    a.library.update([id(a, 'a green field')], { starred: true });
    a.engine.recordEdit('image', id(a, 'a green field'), 'starred', true);
    a.library.update([id(a, 'a blue whale')], { starred: false });
    a.engine.recordEdit('image', id(a, 'a blue whale'), 'starred', false);
    // B, online, deletes the field and stars the peak; it syncs first.
    const field = id(b, 'a green field');
    b.library.delete([field]);
    b.engine.recordEdit('image', field, 'deleted', true);
    b.library.update([id(b, 'a snowy peak')], { starred: true });
    b.engine.recordEdit('image', id(b, 'a snowy peak'), 'starred', true);
    await b.engine.syncOnce();
    // A comes back: its star on the (now deleted) field is a different field than the delete, so
    // both stand; the whale's star is A's alone.
    await converge(a, b);
    expect(view(a)).toEqual(view(b));
    const names = view(a).map((r) => r.split('|').slice(0, 2).join('|'));
    expect(names).toContain('a blue whale|☆');
    expect(names).toContain('a snowy peak|★');
    expect(names.some((r) => r.startsWith('a green field'))).toBe(false);

    // Now a true conflict on one field: both change the peak's star, B last.
    a.library.update([id(a, 'a snowy peak')], { starred: false });
    a.engine.recordEdit('image', id(a, 'a snowy peak'), 'starred', false);
    await a.engine.syncOnce();
    b.library.update([id(b, 'a snowy peak')], { boardId: null, starred: true });
    b.engine.recordEdit('image', id(b, 'a snowy peak'), 'starred', true);
    await b.engine.syncOnce();
    await converge(a, b);
    expect(view(a)).toEqual(view(b));
    expect(view(a).find((r) => r.startsWith('a snowy peak'))).toMatch(/\|★\|/);
  });

  it('a third profile signed in as another user sees none of it', async () => {
    const m = await profile(mallory);
    await m.engine.syncOnce();
    expect(view(m)).toEqual([]);
    expect(boardsOf(m)).toEqual([]);
    // And the URLs A's profile was given do not open Mallory's (or anyone else's) keys.
    const page = await m.port.changes('', 200);
    expect(page.items).toEqual([]);
  });

  it('on sign-out, the account’s synced images leave the view and local images stay', async () => {
    const shown = () => b.library.list({ limit: 100 }).items.length;
    const all = shown();
    const local = (
      b.db.prepare("SELECT count(*) AS n FROM images WHERE origin != 'cloud' AND deleted_at IS NULL").get() as {
        n: number;
      }
    ).n;
    expect(local).toBeGreaterThan(0);
    expect(all).toBeGreaterThan(local);
    await b.cloud.signOut();
    expect(shown()).toBe(local);
    await b.cloud.signIn(alice.email, alice.password);
    expect(shown()).toBe(all);
  });

  it('never syncs while signed out', async () => {
    const before = await bucketKeys(`users/${alice.sub}/`);
    await a.cloud.signOut();
    addLocal(a, 'made while signed out');
    await a.engine.syncOnce();
    expect(a.engine.status().state).toBe('signed_out');
    expect(await bucketKeys(`users/${alice.sub}/`)).toEqual(before);
    await a.cloud.signIn(alice.email, alice.password);
    await a.engine.syncOnce();
    expect(await bucketKeys(`users/${alice.sub}/`)).toHaveLength(before.length + 2);
  });
});

describe('interrupted uploads', () => {
  it('an upload killed mid-transfer (SIGKILL) resumes on restart: one object, one record', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'atelier-profile-'));
    dirs.push(dir);
    mkdirSync(path.join(dir, 'images'), { recursive: true });
    {
      const db = openDatabase(path.join(dir, 'library.db'));
      const library = createLibrary({ db, filesDir: path.join(dir, 'images'), clock: systemClock, urlFor: (f) => f });
      // Big enough that half of it is surely on the wire while the rest is not.
      const png = encodePng({ width: 600, height: 600, channels: 3, data: randomBytes(600 * 600 * 3) });
      library.addImage({ png, origin: 'local', metadata: sampleMetadata('killed mid-transfer') });
      db.close();
    }
    const s = stackInfo();
    const child = spawn(process.execPath, [path.join(import.meta.dirname, 'upload-child.ts')], {
      env: {
        ...process.env,
        PROFILE_DIR: dir,
        API_URL: apiUrl,
        COGNITO_ENDPOINT: s.cognitoEndpoint,
        COGNITO_POOL: s.userPoolId,
        COGNITO_CLIENT: s.clientId,
        EMAIL: alice.email,
        PASSWORD: alice.password,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    await new Promise<void>((resolve, reject) => {
      const onData = (d: Buffer) => {
        output += d.toString();
        if (output.includes('MID-TRANSFER')) resolve();
      };
      child.stdout.on('data', onData);
      child.stderr.on('data', onData);
      child.on('exit', (code) => reject(new Error(`child exited (${code}) before the transfer: ${output}`)));
    });
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;

    const sha = (() => {
      const db = openDatabase(path.join(dir, 'library.db'));
      const row = db.prepare('SELECT sha256, cloud_id FROM images').get() as {
        sha256: string;
        cloud_id: string | null;
      };
      db.close();
      expect(row.cloud_id).toBeNull();
      return row.sha256;
    })();
    const reserved = await h.t.adminPool.query('SELECT id FROM uploads WHERE user_id = $1 AND sha256 = $2', [
      alice.sub,
      sha,
    ]);
    expect(reserved.rows).toHaveLength(1);
    const id = reserved.rows[0].id as string;
    expect(await bucketKeys(`users/${alice.sub}/images/${id}`)).toEqual([]);
    expect((await h.t.adminPool.query('SELECT 1 FROM images WHERE id = $1', [id])).rows).toHaveLength(0);

    // Restart on the same folder.
    const again = await profile(alice, undefined, dir);
    await again.engine.syncOnce();
    expect(
      (await h.t.adminPool.query('SELECT id FROM images WHERE user_id = $1 AND sha256 = $2', [alice.sub, sha])).rows,
    ).toEqual([{ id }]);
    expect(await bucketKeys(`users/${alice.sub}/images/${id}`)).toEqual([`users/${alice.sub}/images/${id}.png`]);
    // (The restarted profile also pulled the account's other images; this is the one it made.)
    const local = again.db.prepare('SELECT cloud_id FROM images WHERE sha256 = ?').get(sha) as { cloud_id: string };
    expect(local.cloud_id).toBe(id);
  });

  it('resume in a restarted engine into exactly one object and one record', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'atelier-profile-'));
    // First run: the image PUT never completes (the process "dies" after the reservation).
    const dying = await profile(
      alice,
      (p) => ({
        ...p,
        putFile: async (): Promise<void> => {
          throw new AppError('CANCELED', 'killed mid-transfer');
        },
      }),
      dir,
    );
    const img = addLocal(dying, 'interrupted');
    await expect(dying.engine.syncOnce()).rejects.toThrow();
    const sha = (dying.db.prepare('SELECT sha256 FROM images WHERE id = ?').get(img.id) as { sha256: string }).sha256;
    const reserved = await h.t.adminPool.query('SELECT id FROM uploads WHERE user_id = $1 AND sha256 = $2', [
      alice.sub,
      sha,
    ]);
    expect(reserved.rows).toHaveLength(1);
    dying.close();

    // Restart on the same library folder.
    const again = await profile(alice, undefined, dir);
    await again.engine.syncOnce();
    const rows = await h.t.adminPool.query('SELECT id FROM images WHERE user_id = $1 AND sha256 = $2', [
      alice.sub,
      sha,
    ]);
    expect(rows.rows).toHaveLength(1);
    expect(rows.rows[0].id).toBe(reserved.rows[0].id);
    const keys = await bucketKeys(`users/${alice.sub}/images/${reserved.rows[0].id}`);
    expect(keys).toHaveLength(1);
    expect(
      (again.db.prepare('SELECT cloud_id FROM images WHERE id = ?').get(img.id) as { cloud_id: string }).cloud_id,
    ).toBe(reserved.rows[0].id);
  });
});

describe('rate limits', () => {
  it('a 429 with Retry-After is waited out, not counted as a failed attempt', async () => {
    let refused = 0;
    const p = await profile(alice, (base) => ({
      ...base,
      // The API refuses the first six reservation calls as its rate limiter would: more than the engine's 5 attempts.
      createUploads: async (bodies) => {
        if (refused < 6) {
          refused++;
          throw new AppError('RATE_LIMITED', 'Rate limit: 300 per minute per user', {
            retryable: true,
            details: { retryAfterSeconds: 0.2, limit: 'user_per_minute' },
          });
        }
        return base.createUploads(bodies);
      },
    }));
    const img = addLocal(p, 'made while rate-limited');
    await p.engine.syncOnce();
    expect(refused).toBe(6);
    expect(
      (p.db.prepare('SELECT cloud_id FROM images WHERE id = ?').get(img.id) as { cloud_id: string }).cloud_id,
    ).toMatch(/^img_/);
  });
});

describe('account switch and storage limit', () => {
  it('after an account switch, no request of the new account carries the old account’s ids', async () => {
    // Every id the engine sends, by the account signed in when it was sent.
    const sent: { account: string | null; ids: string[] }[] = [];
    const p = await profile(alice, (base) => ({
      ...base,
      completeUploads: (ids) => (sent.push({ account: base.account(), ids }), base.completeUploads(ids)),
      edits: (edits) => (sent.push({ account: base.account(), ids: edits.map((e) => e.id) }), base.edits(edits)),
      download: (url) => (sent.push({ account: base.account(), ids: [url] }), base.download(url)),
      downloadFile: (url, ...rest) => (
        sent.push({ account: base.account(), ids: [url] }),
        base.downloadFile(url, ...rest)
      ),
    }));
    await p.engine.syncOnce(); // Alice's gallery comes down.
    const alices = p.db.prepare('SELECT id, cloud_id FROM images WHERE cloud_id IS NOT NULL').all() as {
      id: string;
      cloud_id: string;
    }[];
    expect(alices.length).toBeGreaterThan(1);
    // Edits queued for Alice while signed in (one image deleted and purged before they are sent).
    p.engine.recordEdit('image', alices[0]!.id, 'starred', true);
    p.library.delete([alices[1]!.id]);
    p.engine.recordEdit('image', alices[1]!.id, 'deleted', true);
    p.db.prepare('DELETE FROM images WHERE id = ?').run(alices[1]!.id);
    const mine = addLocal(p, 'made on this computer');

    await p.cloud.signOut();
    await p.cloud.signIn(mallory.email, mallory.password);
    await p.engine.syncOnce();
    // Alice's cloud images left the view; the local one stays (and now syncs to Mallory).
    const shown = p.library.list({ limit: 100 }).items.map((i) => i.id);
    expect(shown).toContain(mine.id);
    for (const a of alices) expect(shown).not.toContain(a.id);
    const aliceIds = alices.map((a) => a.cloud_id);
    const byMallory = sent.filter((s) => s.account === p.port.account()).flatMap((s) => s.ids);
    expect(byMallory.length).toBeGreaterThan(0); // the local image's upload was completed as Mallory
    for (const id of aliceIds) expect(byMallory.join(' ')).not.toContain(id);
    // Alice's edits waited for her and go out once she is back.
    await p.cloud.signOut();
    await p.cloud.signIn(alice.email, alice.password);
    await p.engine.syncOnce();
    const byAlice = sent.filter((s) => s.account === p.port.account()).flatMap((s) => s.ids);
    expect(byAlice).toEqual(expect.arrayContaining([alices[0]!.cloud_id, alices[1]!.cloud_id]));
  });

  it('over the storage limit, the images that do not fit are found before any of their bytes move', async () => {
    const carol = await createTestUser();
    const p = await profile(carol);
    await p.port.storage(); // first sight of Carol creates her row
    // Carol already holds all but 1.5 MB of the free plan's 2 GiB (an upload still reserved).
    await h.t.adminPool.query(
      `INSERT INTO uploads (id, user_id, sha256, size, thumb_sha256, thumb_size, thumb_mime, width, height, metadata, expires_at)
       VALUES ('img_' || upper(substr(md5(random()::text), 1, 22)), $1, $2, $3, $2, $4, 'image/png', 1, 1, '{}', now() + interval '1 hour')`,
      [carol.sub, 'a'.repeat(64), 1024 ** 3, 1024 ** 3 - 1_500_000],
    );
    const big = (seed: number) =>
      p.library.addImage({
        png: encodePng({ width: 600, height: 600, channels: 3, data: randomBytes(600 * 600 * 3) }),
        origin: 'local',
        metadata: sampleMetadata(`big ${seed}`, seed),
      });
    const [first, second] = [big(1), big(2)];
    await expect(p.engine.syncOnce()).rejects.toMatchObject({ code: 'QUOTA_STORAGE_EXCEEDED' });
    expect(p.engine.status()).toMatchObject({
      state: 'error',
      errorCode: 'QUOTA_STORAGE_EXCEEDED',
      overLimit: { images: 1 },
      storage: { limit: 2 * 1024 ** 3 },
    });
    expect(p.engine.status().error).toMatch(/Upgrade/);
    const cloudId = (id: string) =>
      (p.db.prepare('SELECT cloud_id FROM images WHERE id = ?').get(id) as { cloud_id: string | null }).cloud_id;
    expect(cloudId(first.id)).toMatch(/^img_/);
    expect(cloudId(second.id)).toBeNull();
    // Its badge says it stays here, not that it is uploading.
    expect(p.engine.doesNotFit(second.id)).toBe(true);
    expect(p.engine.doesNotFit(first.id)).toBe(false);
    // The second image was never even reserved: nothing of it reached the cloud.
    const sha = (p.db.prepare('SELECT sha256 FROM images WHERE id = ?').get(second.id) as { sha256: string }).sha256;
    expect((await h.t.adminPool.query('SELECT 1 FROM uploads WHERE sha256 = $1', [sha])).rows).toEqual([]);
    expect(await bucketKeys(`users/${carol.sub}/images/`)).toHaveLength(1);
  });
});

describe('batched uploads (decision 0146)', () => {
  it('40 images go up in two reservation calls and fewer completion calls than images, each recorded once', async () => {
    const erin = await createTestUser();
    const calls = { reserve: [] as number[], complete: [] as number[] };
    const p = await profile(erin, (base) => ({
      ...base,
      createUploads: (bodies) => (calls.reserve.push(bodies.length), base.createUploads(bodies)),
      completeUploads: (ids) => (calls.complete.push(ids.length), base.completeUploads(ids)),
    }));
    const made = Array.from({ length: 40 }, (_, i) => addLocal(p, `batched ${i}`));
    await p.engine.syncOnce();
    expect(p.engine.status().state).toBe('idle');
    expect(p.engine.pending()).toBe(0);
    // A small first batch so the PUTs start at once, then the rest in one.
    expect(calls.reserve).toEqual([16, 24]);
    expect(calls.complete.reduce((a, b) => a + b, 0)).toBe(40);
    expect(calls.complete.length).toBeLessThan(40);
    const cloudIds = made.map(
      (m) => (p.db.prepare('SELECT cloud_id FROM images WHERE id = ?').get(m.id) as { cloud_id: string }).cloud_id,
    );
    expect(new Set(cloudIds).size).toBe(40);
    const rows = await h.t.adminPool.query<{ id: string }>('SELECT id FROM images WHERE user_id = $1', [erin.sub]);
    expect(rows.rows.map((r) => r.id).sort()).toEqual([...cloudIds].sort());
    expect(await bucketKeys(`users/${erin.sub}/images/`)).toHaveLength(40);
    expect(await bucketKeys(`users/${erin.sub}/thumbs/`)).toHaveLength(40);
  });

  it('a file changed on disk after it was saved is not uploaded under its old hash; the others are', async () => {
    const fay = await createTestUser();
    const p = await profile(fay);
    const [kept, changed] = [addLocal(p, 'kept as saved'), addLocal(p, 'changed behind the library')];
    const file = p.library.pathOf(changed.id);
    const bytes = readFileSync(file);
    bytes[bytes.length - 20] = bytes[bytes.length - 20]! ^ 0xff;
    writeFileSync(file, bytes);
    await expect(p.engine.syncOnce()).rejects.toMatchObject({ code: 'BAD_REQUEST' });
    const cloudId = (id: string) =>
      (p.db.prepare('SELECT cloud_id FROM images WHERE id = ?').get(id) as { cloud_id: string | null }).cloud_id;
    expect(cloudId(kept.id)).toMatch(/^img_/);
    expect(cloudId(changed.id)).toBeNull();
    const rows = await h.t.adminPool.query<{ id: string }>('SELECT id FROM images WHERE user_id = $1', [fay.sub]);
    expect(rows.rows.map((r) => r.id)).toEqual([cloudId(kept.id)]);
    expect(await bucketKeys(`users/${fay.sub}/images/`)).toEqual([`users/${fay.sub}/images/${cloudId(kept.id)}.png`]);
  });
});

describe('an image made from a picture (issue 15) on another device', () => {
  it('keeps its mode and strength, and names the starting picture by the id it has there', async () => {
    const dana = await createTestUser();
    const [a, b] = [await profile(dana), await profile(dana)];
    const start = addLocal(a, 'a red square on a blue background');
    const result = a.library.addImage({
      png: makePng({ width: 64, height: 64, rgb: [200, 40, 40] }),
      origin: 'local',
      metadata: {
        ...sampleMetadata('a red circle on a blue background', 7),
        generation_mode: 'img2img',
        strength: 0.6,
        init_image: start.id,
        // A painted mask stays on the device that painted it: its name travels as it is.
        init_mask: 'img_LOCALMASKNEVERSYNCED1',
      },
    });
    await a.engine.syncOnce();
    const cloudOf = (p: Profile, id: string) =>
      (p.db.prepare('SELECT cloud_id FROM images WHERE id = ?').get(id) as { cloud_id: string }).cloud_id;
    // In the cloud the starting picture is named by its cloud id, which every device can resolve.
    const uploaded = await h.t.adminPool.query<{ metadata: { init_image: string } }>(
      'SELECT metadata FROM images WHERE id = $1',
      [cloudOf(a, result.id)],
    );
    expect(uploaded.rows[0]!.metadata.init_image).toBe(cloudOf(a, start.id));

    await b.engine.syncOnce();
    const onB = (cloudId: string) =>
      b.db.prepare('SELECT id, metadata FROM images WHERE cloud_id = ?').get(cloudId) as {
        id: string;
        metadata: string;
      };
    const startOnB = onB(cloudOf(a, start.id));
    const resultOnB = onB(cloudOf(a, result.id));
    expect(JSON.parse(resultOnB.metadata)).toMatchObject({
      generation_mode: 'img2img',
      strength: 0.6,
      init_image: startOnB.id,
      init_mask: 'img_LOCALMASKNEVERSYNCED1',
    });
    // And A's own record still names its local picture.
    expect(a.library.get(result.id).metadata).toMatchObject({ init_image: start.id });
  });
});
