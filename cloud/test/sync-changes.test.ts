/**
 * GET /v1/sync/changes and POST /v1/sync/edits on real Postgres: a cursor that never skips a change
 * committed after a later-numbered one (two writers' transactions interleaved by hand), paging,
 * tombstones and restores, per-field last-writer-wins with the loser told, and user B seeing,
 * changing and learning nothing of user A's gallery.
 */
import { newId } from '@atelier/common';
import type { SyncChange, SyncChangesPage } from '@atelier/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestUser, type TestUser } from './support/index.ts';
import { meta, startSyncPair, type SyncApi, type SyncHarness } from './sync-support.ts';

let h: SyncHarness;
let api: SyncApi;
let alice: TestUser;
let bob: TestUser;

beforeAll(async () => {
  ({ h, api, alice, bob } = await startSyncPair());
});
afterAll(async () => {
  await h?.close();
});

let shaCounter = 0;
/** An image row as the upload flow records it (the feed does not look at the bytes). */
async function seed(user: TestUser, prompt: string): Promise<string> {
  const id = newId('img');
  const sha = (++shaCounter).toString(16).padStart(64, '0');
  await h.t.adminPool.query(
    `INSERT INTO images (id, user_id, width, height, metadata, prompt, size, sha256, thumb_mime, thumb_size)
     VALUES ($1, $2, 64, 64, $3, $4, 100, $5, 'image/webp', 10)`,
    [id, user.sub, JSON.stringify(meta(prompt)), prompt, sha],
  );
  return id;
}

async function page(u: TestUser, cursor: string, limit = 200): Promise<SyncChangesPage> {
  const res = await api(u, 'GET', `/v1/sync/changes?limit=${limit}${cursor ? `&cursor=${cursor}` : ''}`);
  expect(res.statusCode).toBe(200);
  return res.json();
}

/** Every page from `cursor` until hasMore is false. */
async function drain(u: TestUser, cursor = '', limit = 200): Promise<{ items: SyncChange[]; cursor: string }> {
  const items: SyncChange[] = [];
  for (;;) {
    const p = await page(u, cursor, limit);
    items.push(...p.items);
    cursor = p.nextCursor;
    if (!p.hasMore) return { items, cursor };
  }
}

/**
 * Drains until `n` changes arrived. The feed holds back changes of transactions younger than the
 * oldest one still open anywhere in the cluster (other test files share it), so a change can take
 * a moment to show; the test asserts what arrives, not when.
 */
async function drainAtLeast(u: TestUser, cursor: string, n: number) {
  let got: SyncChange[] = [];
  for (let i = 0; i < 200; i++) {
    const r = await drain(u, cursor);
    got = [...got, ...r.items];
    cursor = r.cursor;
    if (got.length >= n) return { items: got, cursor };
    await new Promise((res) => setTimeout(res, 50));
  }
  return { items: got, cursor };
}

/** A transaction of the app role as `user`, left open until the test commits it. */
async function openTx(user: TestUser) {
  const c = await h.t.pool.connect();
  await c.query('BEGIN');
  await c.query("SELECT set_config('app.user_id', $1, true)", [user.sub]);
  return {
    query: c.query.bind(c),
    async commit() {
      await c.query('COMMIT');
      c.release();
    },
  };
}

describe('change feed order', () => {
  it('never moves past a change whose transaction commits after a later-numbered one', async () => {
    const [x, y] = [await seed(alice, 'x'), await seed(alice, 'y')];
    const start = await drainAtLeast(alice, '', 2);
    expect(start.items.map((c) => c.id)).toEqual(expect.arrayContaining([x, y]));

    const t1 = await openTx(alice);
    const s1 = Number(
      (await t1.query('UPDATE images SET starred = true WHERE id = $1 RETURNING server_seq', [x])).rows[0].server_seq,
    );
    const t2 = await openTx(alice);
    const s2 = Number(
      (await t2.query('UPDATE images SET starred = true WHERE id = $1 RETURNING server_seq', [y])).rows[0].server_seq,
    );
    expect(s1).toBeLessThan(s2);
    await t2.commit();

    // T2 (seq 2) is committed and visible, T1 (seq 1) is not: a feed ordered by seq alone would
    // hand out y and a cursor past 2, and x's change would never be delivered.
    const naive = await h.t.adminPool.query(
      'SELECT id FROM images WHERE user_id = $1 AND server_seq > $2 ORDER BY server_seq',
      [alice.sub, s1 - 1],
    );
    expect(naive.rows.map((r) => r.id)).toEqual([y]);

    const between = await page(alice, start.cursor);
    expect(between.items).toEqual([]);
    expect(between.nextCursor).toBe(start.cursor);

    await t1.commit();
    const after = await drainAtLeast(alice, between.nextCursor, 2);
    expect(after.items.map((c) => c.id)).toEqual([x, y]);
    expect(after.items.every((c) => c.kind === 'image' && c.image.starred)).toBe(true);
  });

  it('pages through images and boards with limit 1 and sees every change once, in order', async () => {
    const before = await drain(alice);
    const ids = [await seed(alice, 'p1'), await seed(alice, 'p2')];
    const boardId = newId('brd');
    const created = await api(alice, 'POST', '/v1/sync/edits', {
      edits: [{ target: 'board', id: boardId, field: 'create', value: 'Trips' }],
    });
    expect(created.json().results[0].outcome).toBe('applied');
    const walked = await drainAtLeast(alice, before.cursor, 3);
    expect(walked.items.map((c) => c.id).sort()).toEqual([...ids, boardId].sort());
    // Again with one item per page: the same changes in the same order.
    const one: SyncChange[] = [];
    let cursor = before.cursor;
    for (;;) {
      const p = await page(alice, cursor, 1);
      expect(p.items.length).toBeLessThanOrEqual(1);
      one.push(...p.items);
      cursor = p.nextCursor;
      if (!p.hasMore) break;
    }
    expect(one.map((c) => c.id)).toEqual(walked.items.map((c) => c.id));
    const board = one.find((c) => c.id === boardId)!;
    expect(board).toMatchObject({ kind: 'board', name: 'Trips', deleted: false });
    const img = one.find((c) => c.id === ids[0])! as Extract<SyncChange, { kind: 'image' }>;
    expect(new URL(img.image.thumbUrl!).pathname).toBe(`/${h.s3.bucket}/users/${alice.sub}/thumbs/${ids[0]}.webp`);
  });
});

describe('change feed order across a power of ten', () => {
  it('pages in numeric transaction order when ids have different lengths (9 before 10)', async () => {
    // Found by bench:sync: the feed sorted transaction ids as text, so a page spanning 999 → 1000
    // took the 1000s before the 900s and the cursor moved past the 900s for good. The transaction
    // ids are set by hand here, with the touch trigger off for the moment of the update.
    const carol = await createTestUser();
    expect((await api(carol, 'GET', '/v1/me')).statusCode).toBe(200);
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) ids.push(await seed(carol, `carol ${i}`));
    // Below any live transaction (so under the feed's horizon); as text they sort 10, 11, 8, 9, 98, 99.
    const xids = ['98', '99', '10', '11', '8', '9'];
    const client = await h.t.adminPool.connect();
    try {
      await client.query('BEGIN');
      await client.query('ALTER TABLE images DISABLE TRIGGER USER');
      for (const [i, id] of ids.entries())
        await client.query('UPDATE images SET server_xid = $2::text::xid8 WHERE id = $1', [id, xids[i]]);
      await client.query('ALTER TABLE images ENABLE TRIGGER USER');
      await client.query('COMMIT');
    } finally {
      client.release();
    }
    const byXid = [...ids.keys()].sort((x, y) => Number(xids[x]) - Number(xids[y])).map((i) => ids[i]);
    for (const limit of [1, 2, 4, 200]) expect((await drain(carol, '', limit)).items.map((c) => c.id)).toEqual(byXid);
  });
});

describe('edits: last writer wins per field, the loser is told', () => {
  it('star, move, rename, delete and restore flow between two devices', async () => {
    const img = await seed(alice, 'two devices');
    const feed0 = await drainAtLeast(alice, '', 1);
    const change = (items: SyncChange[], id: string) => items.filter((c) => c.id === id).at(-1)!;
    const base = change(feed0.items, img) as Extract<SyncChange, { kind: 'image' }>;
    expect(base.versions).toEqual({ starred: 0, boardId: 0, deleted: 0 });

    // Device A stars; device B, offline, had unstarred… no: B sets starred=false on the old base.
    const a1 = await api(alice, 'POST', '/v1/sync/edits', {
      edits: [{ target: 'image', id: img, field: 'starred', value: true, baseVersion: 0 }],
    });
    expect(a1.json().results[0]).toMatchObject({ outcome: 'applied' });
    const v1 = a1.json().results[0].version;
    expect(v1).toBeGreaterThan(0);
    const b1 = await api(alice, 'POST', '/v1/sync/edits', {
      edits: [{ target: 'image', id: img, field: 'starred', value: false, baseVersion: 0 }],
    });
    expect(b1.json().results[0]).toMatchObject({ outcome: 'conflict', overwritten: { value: true, version: v1 } });
    const v2 = b1.json().results[0].version;
    expect(v2).toBeGreaterThan(v1);

    // A board made on A, renamed on both; the later rename wins and the earlier device learns it.
    const board = newId('brd');
    await api(alice, 'POST', '/v1/sync/edits', {
      edits: [{ target: 'board', id: board, field: 'create', value: 'Cats' }],
    });
    const rA = await api(alice, 'POST', '/v1/sync/edits', {
      edits: [
        { target: 'board', id: board, field: 'name', value: 'Cats (A)', baseVersion: 0 },
        { target: 'image', id: img, field: 'boardId', value: board, baseVersion: 0 },
      ],
    });
    expect(rA.json().results.map((r: { outcome: string }) => r.outcome)).toEqual(['applied', 'applied']);
    const rB = await api(alice, 'POST', '/v1/sync/edits', {
      edits: [{ target: 'board', id: board, field: 'name', value: 'Cats (B)', baseVersion: 0 }],
    });
    expect(rB.json().results[0]).toMatchObject({ outcome: 'conflict', overwritten: { value: 'Cats (A)' } });
    // Same value again on a stale base is no conflict (nothing was lost).
    const same = await api(alice, 'POST', '/v1/sync/edits', {
      edits: [{ target: 'board', id: board, field: 'name', value: 'Cats (B)', baseVersion: 0 }],
    });
    expect(same.json().results[0]).toMatchObject({ outcome: 'applied', version: rB.json().results[0].version });

    // Delete on A, the feed carries the tombstone; restore on B brings it back.
    const del = await api(alice, 'POST', '/v1/sync/edits', {
      edits: [{ target: 'image', id: img, field: 'deleted', value: true, baseVersion: 0 }],
    });
    expect(del.json().results[0].outcome).toBe('applied');
    expect((await api(alice, 'GET', `/v1/images/${img}`)).statusCode).toBe(404);
    const afterDelete = await drainAtLeast(alice, feed0.cursor, 1);
    const tomb = change(afterDelete.items, img) as Extract<SyncChange, { kind: 'image' }>;
    expect(tomb).toMatchObject({ deleted: true, image: { starred: false, boardId: board } });
    expect(tomb.image.url).toBeUndefined();
    const restore = await api(alice, 'POST', '/v1/sync/edits', {
      edits: [{ target: 'image', id: img, field: 'deleted', value: false, baseVersion: tomb.versions.deleted }],
    });
    expect(restore.json().results[0].outcome).toBe('applied');
    expect((await api(alice, 'GET', `/v1/images/${img}`)).statusCode).toBe(200);

    // Deleting the board takes the image off it (a board change on the image, in the feed).
    const bd = await api(alice, 'POST', '/v1/sync/edits', {
      edits: [{ target: 'board', id: board, field: 'boardDeleted', value: true, baseVersion: 0 }],
    });
    expect(bd.json().results[0].outcome).toBe('applied');
    const last = await drainAtLeast(alice, afterDelete.cursor, 2);
    expect(change(last.items, board)).toMatchObject({ kind: 'board', deleted: true, name: 'Cats (B)' });
    const final = change(last.items, img) as Extract<SyncChange, { kind: 'image' }>;
    expect(final).toMatchObject({ deleted: false, image: { starred: false, boardId: null } });
    expect(final.versions.starred).toBe(v2);
    expect(final.versions.boardId).toBeGreaterThan(final.versions.deleted);
  });

  it('rejects what cannot apply and leaves the rest of the batch applied', async () => {
    const img = await seed(alice, 'partial');
    const res = await api(alice, 'POST', '/v1/sync/edits', {
      edits: [
        { target: 'image', id: img, field: 'boardId', value: newId('brd'), baseVersion: 0 },
        { target: 'image', id: newId('img'), field: 'starred', value: true, baseVersion: 0 },
        { target: 'image', id: img, field: 'starred', value: true, baseVersion: 0 },
      ],
    });
    expect(res.statusCode).toBe(200);
    expect(res.json().results).toMatchObject([
      { outcome: 'rejected', code: 'NOT_FOUND' },
      { outcome: 'rejected', code: 'NOT_FOUND' },
      { outcome: 'applied' },
    ]);
    const row = await h.t.adminPool.query('SELECT starred, board_id FROM images WHERE id = $1', [img]);
    expect(row.rows[0]).toEqual({ starred: true, board_id: null });
  });
});

describe('across users', () => {
  it('user B sees, changes and learns nothing of user A’s gallery', async () => {
    const aImg = await seed(alice, 'alice private');
    const aBoard = newId('brd');
    await api(alice, 'POST', '/v1/sync/edits', {
      edits: [{ target: 'board', id: aBoard, field: 'create', value: 'Alice board' }],
    });
    const bImg = await seed(bob, 'bob own');
    await drainAtLeast(alice, '', 2);

    const bobFeed = await drainAtLeast(bob, '', 1);
    expect(bobFeed.items.map((c) => c.id)).toEqual([bImg]);
    expect(JSON.stringify(bobFeed.items)).not.toContain(alice.sub);
    // A cursor taken from A's feed gives B nothing of A's either.
    const aCursor = (await page(alice, '', 1)).nextCursor;
    expect((await drain(bob, aCursor)).items.map((c) => c.id)).not.toContain(aImg);

    const res = await api(bob, 'POST', '/v1/sync/edits', {
      edits: [
        { target: 'image', id: aImg, field: 'starred', value: true, baseVersion: 0 },
        { target: 'image', id: aImg, field: 'deleted', value: true, baseVersion: 0 },
        { target: 'board', id: aBoard, field: 'name', value: 'pwned', baseVersion: 0 },
        { target: 'board', id: aBoard, field: 'boardDeleted', value: true, baseVersion: 0 },
        { target: 'image', id: bImg, field: 'boardId', value: aBoard, baseVersion: 0 },
      ],
    });
    expect(res.json().results.map((r: { outcome: string; code?: string }) => `${r.outcome}:${r.code}`)).toEqual([
      'rejected:NOT_FOUND',
      'rejected:NOT_FOUND',
      'rejected:NOT_FOUND',
      'rejected:NOT_FOUND',
      'rejected:NOT_FOUND',
    ]);
    const a = await h.t.adminPool.query('SELECT starred, deleted_at FROM images WHERE id = $1', [aImg]);
    expect(a.rows[0]).toEqual({ starred: false, deleted_at: null });
    const b = await h.t.adminPool.query('SELECT name, deleted_at, user_id FROM boards WHERE id = $1', [aBoard]);
    expect(b.rows[0]).toEqual({ name: 'Alice board', deleted_at: null, user_id: alice.sub });
    // Creating a board under A's id does not take it over.
    const take = await api(bob, 'POST', '/v1/sync/edits', {
      edits: [{ target: 'board', id: aBoard, field: 'create', value: 'mine now' }],
    });
    expect(take.json().results[0]).toMatchObject({ outcome: 'rejected' });
    expect((await h.t.adminPool.query('SELECT name FROM boards WHERE id = $1', [aBoard])).rows[0].name).toBe(
      'Alice board',
    );
    expect((await drain(bob)).items.map((c) => c.id)).not.toContain(aBoard);
  });

  it('needs a token', async () => {
    expect((await h.t.app.inject({ url: '/v1/sync/changes' })).statusCode).toBe(401);
    expect((await h.t.app.inject({ method: 'POST', url: '/v1/sync/edits', payload: { edits: [] } })).statusCode).toBe(
      401,
    );
  });
});

describe('bad input', () => {
  const garbage = Buffer.from('12.x').toString('base64url');
  const huge = Buffer.from(`${'9'.repeat(20)}.1`).toString('base64url');
  it.each([`cursor=${garbage}`, `cursor=${huge}`, 'cursor=a%2Fb', 'limit=0', 'limit=501', 'limit=x'])(
    'GET /v1/sync/changes?%s → 400 VALIDATION_FAILED',
    async (q) => {
      const res = await api(alice, 'GET', `/v1/sync/changes?${q}`);
      expect(res.statusCode).toBe(400);
      expect(res.json().error.code).toBe('VALIDATION_FAILED');
    },
  );

  const img = 'img_0000000000000000000000';
  it.each<[string, unknown]>([
    ['no edits', { edits: [] }],
    [
      'too many edits',
      { edits: Array(101).fill({ target: 'image', id: img, field: 'starred', value: true, baseVersion: 0 }) },
    ],
    ['an unknown field', { edits: [{ target: 'image', id: img, field: 'prompt', value: 'x', baseVersion: 0 }] }],
    [
      'a board id as image',
      { edits: [{ target: 'image', id: 'brd_0000000000000000000000', field: 'starred', value: true, baseVersion: 0 }] },
    ],
    [
      'an empty board name',
      { edits: [{ target: 'board', id: 'brd_0000000000000000000000', field: 'name', value: ' ', baseVersion: 0 }] },
    ],
    [
      'a negative base version',
      { edits: [{ target: 'image', id: img, field: 'starred', value: true, baseVersion: -1 }] },
    ],
    ['a string star', { edits: [{ target: 'image', id: img, field: 'starred', value: 'yes', baseVersion: 0 }] }],
    [
      'a user id',
      { edits: [{ target: 'image', id: img, field: 'starred', value: true, baseVersion: 0, userId: 'x' }] },
    ],
  ])('POST /v1/sync/edits with %s → 400 VALIDATION_FAILED', async (_n, body) => {
    const res = await api(alice, 'POST', '/v1/sync/edits', body);
    expect(res.statusCode).toBe(400);
    expect(res.json().error.code).toBe('VALIDATION_FAILED');
  });
});
