// Account deletion against the real pieces: Postgres (RLS, the migration's triggers and erase
// functions), cognito-local (re-authentication, AdminDeleteUser), s3rver (objects under
// users/{id}/) and the Stripe peer through the official SDK. A bystander's data must not move.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newId, type ImageId } from '@atelier/common';
import { createHash } from 'node:crypto';
import { cognitoIdentity, s3UserObjects, stripeEraser } from '../src/account/peers.ts';
import { runAccountDeletion, type DeletionDeps } from '../src/account/deletion.ts';
import { startDeletionWorker } from '../src/account/worker.ts';
import { CognitoError, cognitoCall } from '../src/auth/cognito-client.ts';
import { insertImages } from '../src/db/gallery/images-repository.ts';
import { withSystemTx } from '../src/db/tx.ts';
import { passwordAuth } from '../src/stack/cognito.ts';
import { imageObjectKey, thumbObjectKey } from '../src/storage/keys.ts';
import type { S3ObjectStore } from '../src/storage/s3-object-store.ts';
import { until } from './gen-support.ts';
import { localImage, putPresigned } from './sync-support.ts';
import {
  auth,
  buildTestApp,
  createTestDatabase,
  createTestUser,
  stackInfo,
  type TestApp,
  type TestDatabase,
  type TestUser,
} from './support/index.ts';
import { startTestS3, type TestS3 } from './support/s3.ts';
import { PEER_SECRET_KEY, StripePeer } from './support/stripe-peer.ts';
import { fixtureMetadata } from './support/metadata.ts';

const PRICE = 'price_pro_monthly';
let peer: StripePeer;
let s3: TestS3;
let store: S3ObjectStore;
let t: TestApp;
let db: TestDatabase;

const meta = (prompt: string) => fixtureMetadata(prompt);

interface Seeded {
  user: TestUser;
  images: ImageId[];
  customerId: string;
  subscriptionId: string;
}

/** What a real account accumulates: images (objects + rows), a board, usage, a Stripe subscription. */
async function seedAccount(user: TestUser, extraObjects = 0): Promise<Seeded> {
  expect((await t.app.inject({ url: '/v1/me', headers: auth(user) })).statusCode).toBe(200);
  const images: ImageId[] = [];
  for (let i = 0; i < 2; i++) {
    const id = newId('img');
    const png = new TextEncoder().encode(`png ${i} of ${user.sub}`);
    await store.put(imageObjectKey(user.sub, id), png, { contentType: 'image/png' });
    await store.put(thumbObjectKey(user.sub, id, 'image/png'), png, { contentType: 'image/png' });
    await withSystemTx(t.systemPool, (tx) =>
      insertImages(tx, user.sub, [
        {
          id,
          generationId: null,
          batchIndex: null,
          width: 64,
          height: 64,
          metadata: meta(`picture ${i}`),
          size: png.byteLength,
          sha256: createHash('sha256').update(png).digest('hex'),
          thumbMime: 'image/png',
        },
      ]),
    );
    images.push(id);
  }
  // More objects than one listing page holds (the eraser lists 3 at a time below).
  for (let i = 0; i < extraObjects; i++)
    await s3.store().put(`users/${user.sub}/exports/old-${i}.zip` as never, new Uint8Array([i]), {
      contentType: 'application/zip',
    });
  const board = await t.app.inject({ method: 'POST', url: '/v1/boards', headers: auth(user), payload: { name: 'b' } });
  expect(board.statusCode).toBe(201);
  const done = await t.app.inject({
    method: 'POST',
    url: '/v1/generations',
    headers: auth(user),
    payload: { prompt: 'a finished one' },
  });
  expect(done.statusCode).toBe(202);
  await t.adminPool.query(`UPDATE generations SET status = 'succeeded' WHERE id = $1`, [done.json().id]);
  const queued = await t.app.inject({
    method: 'POST',
    url: '/v1/generations',
    headers: auth(user),
    payload: { prompt: 'still queued', count: 2 },
  });
  expect(queued.statusCode).toBe(202);
  // A paying customer: the peer holds the customer and subscription, the row points at them.
  const customerId = `cus_${user.sub.slice(0, 8)}`;
  peer.customers.set(customerId, { id: customerId, object: 'customer', email: user.email, metadata: {} });
  const sub = peer.putSubscription({
    customer: customerId,
    status: 'active',
    priceId: PRICE,
    periodStart: new Date(Date.now() - 86_400_000),
    periodEnd: new Date(Date.now() + 29 * 86_400_000),
  });
  await t.adminPool.query(
    `INSERT INTO subscriptions (user_id, plan, status, stripe_customer_id, stripe_subscription_id)
     VALUES ($1, 'pro', 'active', $2, $3)
     ON CONFLICT (user_id) DO UPDATE SET plan = 'pro', status = 'active', stripe_customer_id = $2,
       stripe_subscription_id = $3`,
    [user.sub, customerId, sub.id],
  );
  return { user, images, customerId, subscriptionId: sub.id as string };
}

async function objectsUnder(userId: string): Promise<number> {
  let n = 0;
  const objects = s3UserObjects(s3.config);
  // Count by reading back what a listing finds, without deleting (deleteAll would delete).
  const { ListObjectsV2Command, S3Client } = await import('@aws-sdk/client-s3');
  const c = new S3Client({
    region: s3.config.region,
    endpoint: s3.config.endpoint!,
    forcePathStyle: true,
    credentials: s3.config.credentials!,
  });
  let token: string | undefined;
  do {
    const page = await c.send(
      new ListObjectsV2Command({ Bucket: s3.config.bucket, Prefix: `users/${userId}/`, ContinuationToken: token }),
    );
    n += page.KeyCount ?? 0;
    token = page.NextContinuationToken;
  } while (token);
  c.destroy();
  objects.close();
  return n;
}

async function rowCounts(userId: string) {
  const r = await t.adminPool.query<Record<string, number>>(
    `SELECT (SELECT count(*) FROM users WHERE id = $1)::int AS users,
            (SELECT count(*) FROM subscriptions WHERE user_id = $1)::int AS subscriptions,
            (SELECT count(*) FROM generations WHERE user_id = $1)::int AS generations,
            (SELECT count(*) FROM images WHERE user_id = $1)::int AS images,
            (SELECT count(*) FROM boards WHERE user_id = $1)::int AS boards,
            (SELECT count(*) FROM usage_periods WHERE user_id = $1)::int AS periods,
            (SELECT count(*) FROM usage_ledger WHERE user_id = $1)::int AS ledger,
            (SELECT count(*) FROM pgboss.job WHERE name = 'generations' AND data->>'userId' = $1)::int AS jobs`,
    [userId],
  );
  return r.rows[0]!;
}

async function ledgerOf(userId: string) {
  const r = await t.adminPool.query<{ kind: string; amount: number; generation_id: string | null }>(
    `SELECT kind, amount, generation_id FROM usage_ledger WHERE user_id = $1 ORDER BY id`,
    [userId],
  );
  return r.rows;
}

async function cognitoUserExists(sub: string): Promise<boolean> {
  const s = stackInfo();
  try {
    await cognitoCall(s.cognitoEndpoint, 'AdminGetUser', { UserPoolId: s.userPoolId, Username: sub });
    return true;
  } catch (e) {
    if (e instanceof CognitoError && e.type === 'UserNotFoundException') return false;
    throw e;
  }
}

const del = (u: TestUser, body: unknown) =>
  t.app.inject({ method: 'DELETE', url: '/v1/me', headers: auth(u), payload: body as object });

function deletionDeps(onStep?: DeletionDeps['onStep']): DeletionDeps {
  return {
    systemPool: t.systemPool,
    billing: stripeEraser(t.config.billing, { maxNetworkRetries: 0 }),
    identity: cognitoIdentity(t.config.cognito),
    objects: s3UserObjects(s3.config, { pageSize: 3 }),
    ...(onStep ? { onStep } : {}),
  };
}

let alice: Seeded;
let bob: Seeded;

beforeAll(async () => {
  peer = await StripePeer.start();
  s3 = await startTestS3('account-deletion');
  store = s3.store();
  await store.ensureBucket();
  db = await createTestDatabase({
    STRIPE_SECRET_KEY: PEER_SECRET_KEY,
    STRIPE_WEBHOOK_SECRET: 'whsec_account_test',
    STRIPE_PRICE_PRO: PRICE,
    STRIPE_API_HOST: '127.0.0.1',
    STRIPE_API_PORT: String(peer.port),
    STRIPE_API_PROTOCOL: 'http',
    S3_ENDPOINT: s3.endpoint,
    S3_BUCKET: s3.bucket,
  });
  t = await buildTestApp({ db, overrides: { objectStore: store } });
  const [a, b] = await Promise.all([createTestUser(), createTestUser()]);
  alice = await seedAccount(a!, 7);
  bob = await seedAccount(b!, 1);
});

afterAll(async () => {
  await t?.close();
  await s3?.close();
  await peer?.close();
});

describe('DELETE /v1/me: re-authentication and bad input', () => {
  it('needs a token', async () => {
    const r = await t.app.inject({ method: 'DELETE', url: '/v1/me', payload: { email: 'x@y.z', password: 'p' } });
    expect(r.statusCode).toBe(401);
  });

  it('refuses a missing, malformed or padded body with VALIDATION_FAILED', async () => {
    for (const body of [
      undefined,
      {},
      { email: alice.user.email },
      { email: alice.user.email, password: '' },
      { email: alice.user.email, password: alice.user.password, userId: bob.user.sub },
      { email: 'x'.repeat(300), password: 'p' },
    ]) {
      const r = await t.app.inject({
        method: 'DELETE',
        url: '/v1/me',
        headers: { ...auth(alice.user), ...(body ? { 'content-type': 'application/json' } : {}) },
        ...(body ? { payload: body } : {}),
      });
      expect(r.statusCode, JSON.stringify(body)).toBe(400);
      expect(r.json().error.code).toBe('VALIDATION_FAILED');
    }
  });

  it('refuses a wrong password, and another account’s correct credentials, with REAUTH_FAILED; nothing changes', async () => {
    const before = await rowCounts(alice.user.sub);
    const wrong = await del(alice.user, { email: alice.user.email, password: 'Not-The-Password-1' });
    expect(wrong.statusCode).toBe(403);
    expect(wrong.json().error.code).toBe('REAUTH_FAILED');
    // Bob's token with Alice's credentials: the password signs in as Alice, not as the caller.
    const cross = await del(bob.user, { email: alice.user.email, password: alice.user.password });
    expect(cross.statusCode).toBe(403);
    expect(cross.json().error.code).toBe('REAUTH_FAILED');
    const unknown = await del(alice.user, { email: 'nobody@example.test', password: 'Whatever-123' });
    expect(unknown.statusCode).toBe(403);
    expect(await rowCounts(alice.user.sub)).toEqual(before);
    const marks = await t.adminPool.query(
      `SELECT (SELECT count(*) FROM account_deletions)::int AS d,
              (SELECT count(*) FROM users WHERE deleting_at IS NOT NULL)::int AS u,
              (SELECT count(*) FROM pgboss.job WHERE name = 'account_deletions')::int AS j`,
    );
    expect(marks.rows[0]).toEqual({ d: 0, u: 0, j: 0 });
    expect(await cognitoUserExists(alice.user.sub)).toBe(true);
  });
});

describe('deleting an account', () => {
  it('marks it deleting, cancels and refunds queued work once, enqueues one job, refuses new work', async () => {
    const ledgerBefore = await ledgerOf(alice.user.sub);
    const r = await del(alice.user, { email: alice.user.email, password: alice.user.password });
    expect(r.statusCode).toBe(202);
    expect(r.json()).toMatchObject({ status: 'deleting' });
    const gens = await t.adminPool.query<{ status: string; error_code: string | null }>(
      `SELECT status, error_code FROM generations WHERE user_id = $1 ORDER BY id`,
      [alice.user.sub],
    );
    expect(gens.rows).toEqual([
      { status: 'succeeded', error_code: null },
      { status: 'canceled', error_code: 'ACCOUNT_DELETED' },
    ]);
    const ledger = await ledgerOf(alice.user.sub);
    expect(ledger.slice(ledgerBefore.length)).toEqual([expect.objectContaining({ kind: 'refund', amount: -2 })]);
    const used = await t.adminPool.query<{ used: number }>(
      `SELECT sum(used)::int AS used FROM usage_periods WHERE user_id = $1`,
      [alice.user.sub],
    );
    expect(used.rows[0]!.used).toBe(1);
    const jobs = await t.adminPool.query<{ name: string; state: string; data: unknown }>(
      `SELECT name, state, data FROM pgboss.job WHERE data->>'userId' = $1 AND name IN ('generations', 'account_deletions')
        ORDER BY created_on`,
      [alice.user.sub],
    );
    expect(jobs.rows.filter((j) => j.name === 'account_deletions')).toEqual([
      { name: 'account_deletions', state: 'created', data: { userId: alice.user.sub } },
    ]);
    expect(jobs.rows.filter((j) => j.name === 'generations').map((j) => j.state)).toContain('cancelled');

    // Asking again is harmless: still one job, no second refund.
    const again = await del(alice.user, { email: alice.user.email, password: alice.user.password });
    expect([202, 410]).toContain(again.statusCode);
    const n = await t.adminPool.query(`SELECT count(*)::int AS n FROM pgboss.job WHERE name = 'account_deletions'`);
    expect(n.rows[0]).toEqual({ n: 1 });
    expect((await ledgerOf(alice.user.sub)).length).toBe(ledger.length);

    const submit = await t.app.inject({
      method: 'POST',
      url: '/v1/generations',
      headers: auth(alice.user),
      payload: { prompt: 'one more' },
    });
    expect(submit.statusCode).toBe(410);
    expect(submit.json().error.code).toBe('ACCOUNT_DELETED');
    const board = await t.app.inject({
      method: 'POST',
      url: '/v1/boards',
      headers: auth(alice.user),
      payload: { name: 'x' },
    });
    expect(board.statusCode).toBe(410);
    // A sync upload reservation would hand out presigned PUTs whose bytes could land after the
    // job's objects step and outlive the account: refused too, with no reservation left.
    const upload = await t.app.inject({
      method: 'POST',
      url: '/v1/uploads',
      headers: auth(alice.user),
      payload: localImage('after deletion').body,
    });
    expect(upload.statusCode).toBe(410);
    expect(upload.json().error.code).toBe('ACCOUNT_DELETED');
    const reservations = await t.adminPool.query(`SELECT count(*)::int AS n FROM uploads WHERE user_id = $1`, [
      alice.user.sub,
    ]);
    expect(reservations.rows[0]).toEqual({ n: 0 });
    // The same for a starting image or mask (issue 15): no presigned PUT, no input row.
    const input = await t.app.inject({
      method: 'POST',
      url: '/v1/inputs',
      headers: auth(alice.user),
      payload: {
        purpose: 'init',
        contentType: 'image/png',
        byteLength: 100,
        sha256: 'a'.repeat(64),
        width: 64,
        height: 64,
      },
    });
    expect([input.statusCode, input.json().error.code]).toEqual([410, 'ACCOUNT_DELETED']);
    const inputs = await t.adminPool.query(`SELECT count(*)::int AS n FROM inputs WHERE user_id = $1`, [
      alice.user.sub,
    ]);
    expect(inputs.rows[0]).toEqual({ n: 0 });
  });

  it('resumes after a crash after any step and finishes without repeating a step', async () => {
    const ledgerBefore = await ledgerOf(alice.user.sub);
    const bobBefore = { rows: await rowCounts(bob.user.sub), ledger: await ledgerOf(bob.user.sub) };
    const crash = (at: string, phase: string) => (step: string, p: string) => {
      if (step === at && p === phase) throw new Error(`crash after ${step} ${p}`);
    };
    // 1: dies after the objects step was recorded.
    await expect(runAccountDeletion(deletionDeps(crash('objects', 'recorded')), alice.user.sub)).rejects.toThrow(
      /crash after objects/,
    );
    let state = await t.adminPool.query(`SELECT step, anon_id FROM account_deletions WHERE user_id = $1`, [
      alice.user.sub,
    ]);
    expect(state.rows[0]).toEqual({ step: 'rows', anon_id: null });
    expect(await objectsUnder(alice.user.sub)).toBe(0);
    expect(peer.customers.has(alice.customerId)).toBe(false);
    expect(peer.subscriptions.get(alice.subscriptionId)!.status).toBe('canceled');
    // 2: dies inside the rows step, before its record: the transaction rolls back whole.
    await expect(runAccountDeletion(deletionDeps(crash('rows', 'effect')), alice.user.sub)).rejects.toThrow(
      /crash after rows/,
    );
    state = await t.adminPool.query(`SELECT step, anon_id FROM account_deletions WHERE user_id = $1`, [alice.user.sub]);
    expect(state.rows[0]).toEqual({ step: 'rows', anon_id: null });
    expect((await rowCounts(alice.user.sub)).images).toBe(2);
    // 3: dies after Cognito's user was deleted, before it was recorded (the step runs again).
    await expect(runAccountDeletion(deletionDeps(crash('cognito', 'effect')), alice.user.sub)).rejects.toThrow(
      /crash after cognito/,
    );
    expect(await cognitoUserExists(alice.user.sub)).toBe(false);
    // 4: completes.
    expect(await runAccountDeletion(deletionDeps(), alice.user.sub)).toBe('done');
    expect(await runAccountDeletion(deletionDeps(), alice.user.sub)).toBe('done');

    // Stripe was asked once each (a resumed run never went back to a recorded step).
    expect(peer.sent('DELETE', `/v1/customers/${alice.customerId}`)).toHaveLength(1);
    expect(peer.sent('DELETE', `/v1/subscriptions/${alice.subscriptionId}`)).toHaveLength(1);
    // Cognito: gone; the password no longer signs in.
    expect(await cognitoUserExists(alice.user.sub)).toBe(false);
    await expect(
      passwordAuth(stackInfo().cognitoEndpoint, stackInfo().clientId, alice.user.email, alice.user.password),
    ).rejects.toThrow();
    // Rows: gone, usage kept under one anonymous id with the same amounts, no email, no notes.
    expect(await rowCounts(alice.user.sub)).toEqual({
      users: 0,
      subscriptions: 0,
      generations: 0,
      images: 0,
      boards: 0,
      periods: 0,
      ledger: 0,
      jobs: 0,
    });
    const anon = await t.adminPool.query<{ user_id: string; email: string | null }>(
      `SELECT DISTINCT l.user_id, u.email FROM usage_ledger l JOIN users u ON u.id = l.user_id
        WHERE l.user_id LIKE 'deleted\\_%'`,
    );
    expect(anon.rows).toHaveLength(1);
    expect(anon.rows[0]!.email).toBeNull();
    const anonId = anon.rows[0]!.user_id;
    expect(await ledgerOf(anonId)).toEqual(ledgerBefore);
    const notes = await t.adminPool.query(
      `SELECT count(*)::int AS n FROM usage_ledger WHERE user_id = $1 AND note IS NOT NULL`,
      [anonId],
    );
    expect(notes.rows[0]).toEqual({ n: 0 });
    const periods = await t.adminPool.query<{ used: number }>(
      `SELECT sum(used)::int AS used FROM usage_periods WHERE user_id = $1`,
      [anonId],
    );
    expect(periods.rows[0]!.used).toBe(1);
    const done = await t.adminPool.query(
      `SELECT step, anon_id, attempts, completed_at IS NOT NULL AS completed FROM account_deletions WHERE user_id = $1`,
      [alice.user.sub],
    );
    expect(done.rows[0]).toEqual({ step: 'done', anon_id: null, attempts: 4, completed: true });
    // Objects: none left under the prefix (more than one listing page was deleted).
    expect(await objectsUnder(alice.user.sub)).toBe(0);

    // The bystander: rows, ledger, objects, Stripe customer and Cognito user untouched.
    expect(await rowCounts(bob.user.sub)).toEqual(bobBefore.rows);
    expect(await ledgerOf(bob.user.sub)).toEqual(bobBefore.ledger);
    expect(await objectsUnder(bob.user.sub)).toBe(5);
    for (const id of bob.images) expect(await store.head(imageObjectKey(bob.user.sub, id))).not.toBeNull();
    expect(peer.customers.has(bob.customerId)).toBe(true);
    expect(peer.subscriptions.get(bob.subscriptionId)!.status).toBe('active');
    expect(await cognitoUserExists(bob.user.sub)).toBe(true);
    expect((await t.app.inject({ url: '/v1/me', headers: auth(bob.user) })).statusCode).toBe(200);
  });

  it('an access token issued before the deletion cannot bring the account back', async () => {
    const me = await t.app.inject({ url: '/v1/me', headers: auth(alice.user) });
    expect(me.statusCode).toBe(410);
    expect(me.json().error.code).toBe('ACCOUNT_DELETED');
    // Another replica (no provisioning cache) tries first-sight provisioning: refused, no row.
    const fresh = await buildTestApp({ db, overrides: { objectStore: store } });
    try {
      for (const url of ['/v1/me', '/v1/boards', '/v1/images']) {
        const r = await fresh.app.inject({ url, headers: auth(alice.user) });
        expect(r.statusCode, url).toBe(410);
        expect(r.json().error.code).toBe('ACCOUNT_DELETED');
      }
    } finally {
      await fresh.close();
    }
    expect((await rowCounts(alice.user.sub)).users).toBe(0);
  });

  it('runs as a pg-boss job: a request on the API ends with the account gone', async () => {
    const carol = await seedAccount(await createTestUser(), 0);
    const worker = await startDeletionWorker({ ...deletionDeps(), connectionString: t.config.database.systemUrl });
    try {
      const r = await del(carol.user, { email: carol.user.email, password: carol.user.password });
      expect(r.statusCode).toBe(202);
      await until(
        async () =>
          (await t.adminPool.query(`SELECT step FROM account_deletions WHERE user_id = $1`, [carol.user.sub])).rows[0]
            ?.step,
        (s) => s === 'done',
      );
    } finally {
      await worker.stop();
    }
    expect(await cognitoUserExists(carol.user.sub)).toBe(false);
    expect(await objectsUnder(carol.user.sub)).toBe(0);
    expect((await rowCounts(carol.user.sub)).users).toBe(0);
    expect(peer.customers.has(carol.customerId)).toBe(false);
    expect(await objectsUnder(bob.user.sub)).toBe(5);
  });

  it('bytes put through a URL presigned before the request, landing after the objects step, are swept once it expired', async () => {
    const dave = await createTestUser();
    expect((await t.app.inject({ url: '/v1/me', headers: auth(dave) })).statusCode).toBe(200);
    const img = localImage('uploaded too late');
    const res = await t.app.inject({ method: 'POST', url: '/v1/uploads', headers: auth(dave), payload: img.body });
    expect(res.statusCode).toBe(201);
    const up = res.json();
    let landedAfterObjectsStep = 0;
    const worker = await startDeletionWorker({
      ...deletionDeps(async (step, phase) => {
        // The slow client's PUTs arrive once the objects step has run: the URLs are still valid.
        if (step !== 'finish' || phase !== 'recorded' || landedAfterObjectsStep) return;
        expect(await putPresigned(up.image, img.png)).toBe(200);
        expect(await putPresigned(up.thumb, img.thumb)).toBe(200);
        landedAfterObjectsStep = await objectsUnder(dave.sub);
      }),
      connectionString: t.config.database.systemUrl,
      presignSeconds: 2,
      lateSweepMarginSeconds: 1,
    });
    try {
      expect((await del(dave, { email: dave.email, password: dave.password })).statusCode).toBe(202);
      await until(
        async () =>
          (await t.adminPool.query(`SELECT step FROM account_deletions WHERE user_id = $1`, [dave.sub])).rows[0]?.step,
        (s) => s === 'done',
      );
      // (The hook runs after 'done' is recorded.)
      await until(
        async () => landedAfterObjectsStep,
        (n) => n > 0,
      );
      expect(landedAfterObjectsStep).toBe(2);
      // One late sweep per account, due when the URLs handed out before the request have expired.
      // (Sent once the deletion run has returned, which is after the hook: wait for it.)
      const lateSweeps = async () =>
        (
          await t.adminPool.query<{ n: number }>(
            `SELECT count(*)::int AS n FROM pgboss.job WHERE name = 'account_deletions' AND singleton_key = $1`,
            [`${dave.sub}:late-sweep`],
          )
        ).rows[0]!.n;
      await until(lateSweeps, (n) => n > 0);
      expect(await lateSweeps()).toBe(1);
      await until(
        () => objectsUnder(dave.sub),
        (n) => n === 0,
      );
    } finally {
      await worker.stop();
    }
    expect(await objectsUnder(bob.user.sub)).toBe(5);
  });
});
