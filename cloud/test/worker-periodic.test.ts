// The workers' periodic work runs once per cluster: two worker-side instances (separate system
// pools, stores and pg-boss instances) on one database both register the image janitor and the
// upload sweep, and each occurrence runs exactly once — seen in periodic_runs, in the queue's job
// rows, and in the bucket: a tombstoned image's bytes and an abandoned upload's bytes are gone,
// each counted by exactly one run. The per-worker timers this replaced ran N times per period.
import { createHash } from 'node:crypto';
import { newId } from '@atelier/common';
import type { ImageId } from '@atelier/common';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { insertImages } from '../src/db/gallery/images-repository.ts';
import { createPool, type Pool } from '../src/db/pool.ts';
import { withSystemTx } from '../src/db/tx.ts';
import {
  cronForInterval,
  IMAGE_JANITOR_QUEUE,
  INPUT_SWEEP_QUEUE,
  UPLOAD_SWEEP_QUEUE,
  type PeriodicWork,
} from '../src/periodic/periodic-work.ts';
import { imageObjectKey, inputObjectKey, thumbObjectKey } from '../src/storage/keys.ts';
import type { S3ObjectStore } from '../src/storage/s3-object-store.ts';
import { startWorkerPeriodicWork, workerPeriodicTasks } from '../src/worker/periodic.ts';
import { startTestS3, type TestS3 } from './support/s3.ts';
import {
  auth,
  buildTestApp,
  createTestDatabase,
  createTestUser,
  testConfig,
  type TestApp,
  type TestDatabase,
  type TestUser,
} from './support/index.ts';

let s3: TestS3;
let store: S3ObjectStore;
let db: TestDatabase;
let t: TestApp;
let alice: TestUser;
let tombstoned: ImageId;
let abandoned: ImageId;
let expiredInput: string;
const workers: { pool: Pool; work: PeriodicWork }[] = [];
let workersStarted = 0;

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const bytes = (s: string) => new TextEncoder().encode(s);

beforeAll(async () => {
  s3 = await startTestS3('sweeps-test');
  store = s3.store();
  db = await createTestDatabase({
    S3_ENDPOINT: s3.endpoint,
    S3_BUCKET: s3.bucket,
    PERIODIC_WORK: 'on',
    PERIODIC_CRON_MONITOR_SECONDS: '2',
    // Every minute; images are purgeable as soon as they are tombstoned.
    JANITOR_INTERVAL_SECONDS: '60',
    IMAGE_RETENTION_HOURS: '0',
  });
  t = await buildTestApp({ db, overrides: { objectStore: store } });
  alice = await createTestUser();
  expect((await t.app.inject({ method: 'GET', url: '/v1/me', headers: auth(alice) })).statusCode).toBe(200);

  // An image Alice deleted: its bytes are the janitor's to remove.
  tombstoned = newId('img');
  const png = bytes(`png of a deleted fox for ${alice.sub}`);
  await store.put(imageObjectKey(alice.sub, tombstoned), png, { contentType: 'image/png' });
  await store.put(thumbObjectKey(alice.sub, tombstoned, 'image/png'), bytes('thumb'), { contentType: 'image/png' });
  await withSystemTx(t.systemPool, (tx) =>
    insertImages(tx, alice.sub, [
      {
        id: tombstoned,
        generationId: null,
        batchIndex: null,
        width: 64,
        height: 64,
        metadata: {
          positive_prompt: 'a deleted fox',
          negative_prompt: '',
          seed: 1,
          steps: 4,
          cfg_scale: 7.5,
          scheduler: 'euler_a',
          width: 64,
          height: 64,
          model: { name: 'atelier-fixture-sd' },
          generation_mode: 'txt2img',
          app_version: '0.1.0',
        },
        size: png.byteLength,
        sha256: sha(png),
        thumbMime: 'image/png',
      },
    ]),
  );
  const del = await t.app.inject({ method: 'DELETE', url: `/v1/images/${tombstoned}`, headers: auth(alice) });
  expect(del.statusCode).toBe(204);

  // An upload Alice reserved, put bytes for, and never completed; its URLs expired.
  abandoned = newId('img');
  const up = bytes(`png of an abandoned upload for ${alice.sub}`);
  await store.put(imageObjectKey(alice.sub, abandoned), up, { contentType: 'image/png' });
  await store.put(thumbObjectKey(alice.sub, abandoned, 'image/webp'), bytes('webp'), { contentType: 'image/webp' });
  await t.adminPool.query(
    `INSERT INTO uploads (id, user_id, sha256, size, thumb_sha256, thumb_size, thumb_mime, width, height, metadata, expires_at)
     VALUES ($1, $2, $3, $4, $5, 4, 'image/webp', 64, 64, '{}', now() - interval '1 minute')`,
    [abandoned, alice.sub, sha(up), up.byteLength, sha(bytes('webp'))],
  );

  // A starting image Alice uploaded whose retention ran out (issue 15): the input sweep's.
  expiredInput = newId('inp');
  const start = bytes(`png of an old starting image for ${alice.sub}`);
  await store.put(inputObjectKey(alice.sub, expiredInput, 'image/png'), start, { contentType: 'image/png' });
  await t.adminPool.query(
    `INSERT INTO inputs (id, user_id, purpose, content_type, byte_length, sha256, width, height, status, expires_at)
     VALUES ($1, $2, 'init', 'image/png', $3, $4, 64, 64, 'ready', now() - interval '1 minute')`,
    [expiredInput, alice.sub, start.byteLength, sha(start)],
  );

  for (let i = 0; i < 2; i++) {
    const pool = createPool(db.config, 'system', { max: 3 });
    const work = await startWorkerPeriodicWork({ config: db.config, pool, store: s3.store() });
    expect(work).not.toBeNull();
    workers.push({ pool, work: work! });
  }
  workersStarted = Date.now();
}, 60_000);

afterAll(async () => {
  for (const w of workers) {
    await w.work.stop();
    await w.pool.end();
  }
  await t?.close();
  await s3?.close();
});

interface Run {
  job_id: string;
  task: string;
  ok: boolean;
  minute: string;
  result: Record<string, number>;
}

async function query<R extends pg.QueryResultRow>(sql: string, params: unknown[] = []): Promise<R[]> {
  const c = new pg.Client({ connectionString: db.url });
  await c.connect();
  try {
    return (await c.query<R>(sql, params)).rows;
  } finally {
    await c.end();
  }
}

// An occurrence is named by the minute its job was filed in, not the minute a worker started it:
// on a loaded machine the job of one minute could start in the next, beside that minute's own.
const runs = (task: string) =>
  query<Run>(
    `SELECT r.job_id::text, r.task, r.ok, r.result, to_char(date_trunc('minute', j.created_on), 'HH24:MI') AS minute
       FROM periodic_runs r JOIN pgboss.job j ON j.id::text = r.job_id::text
      WHERE r.task = $1 ORDER BY r.started_at`,
    [task],
  );

describe('the workers’ periodic work across two worker instances', () => {
  it('the image janitor, the upload sweep and the input sweep each run once per minute, not once per worker', async () => {
    // Watch longer than one period (a per-worker timer would have fired in each worker by then)
    // and until each task ran twice.
    const watchUntil = workersStarted + 75_000;
    const deadline = Date.now() + 170_000;
    while (Date.now() < deadline) {
      const [j, u, n] = await Promise.all([
        runs(IMAGE_JANITOR_QUEUE),
        runs(UPLOAD_SWEEP_QUEUE),
        runs(INPUT_SWEEP_QUEUE),
      ]);
      if (j.length >= 2 && u.length >= 2 && n.length >= 2 && Date.now() >= watchUntil) break;
      await new Promise((r) => setTimeout(r, 2_000));
    }
    // Give a duplicate of the latest occurrence time to appear (the other instance's cron pass).
    await new Promise((r) => setTimeout(r, 6_000));

    for (const [task, counter] of [
      [IMAGE_JANITOR_QUEUE, 'purged'],
      [UPLOAD_SWEEP_QUEUE, 'swept'],
      [INPUT_SWEEP_QUEUE, 'swept'],
    ] as const) {
      const seen = await runs(task);
      expect(seen.length, task).toBeGreaterThanOrEqual(2);
      const minutes = seen.map((r) => r.minute);
      expect(new Set(minutes).size, task).toBe(minutes.length);
      expect(seen.every((r) => r.ok)).toBe(true);
      // The one seeded item was handled by exactly one run.
      expect(
        seen.reduce((n, r) => n + r.result[counter]!, 0),
        task,
      ).toBe(1);

      const jobs = await query<{ id: string }>('SELECT id::text FROM pgboss.job WHERE name = $1', [task]);
      expect(jobs.map((j) => j.id)).toEqual(expect.arrayContaining(seen.map((r) => r.job_id)));
      const doubled = await query(
        `SELECT date_trunc('minute', created_on) FROM pgboss.job WHERE name = $1 GROUP BY 1 HAVING count(*) > 1`,
        [task],
      );
      expect(doubled).toHaveLength(0);
      expect(await query('SELECT name, cron FROM pgboss.schedule WHERE name = $1', [task])).toEqual([
        { name: task, cron: '* * * * *' },
      ]);
    }

    // What the runs did, in the bucket and the rows.
    expect(await store.head(imageObjectKey(alice.sub, tombstoned))).toBeNull();
    expect(await store.head(thumbObjectKey(alice.sub, tombstoned, 'image/png'))).toBeNull();
    const [img] = await query<{ purged_at: Date | null }>('SELECT purged_at FROM images WHERE id = $1', [tombstoned]);
    expect(img!.purged_at).not.toBeNull();
    expect(await store.head(imageObjectKey(alice.sub, abandoned))).toBeNull();
    expect(await store.head(thumbObjectKey(alice.sub, abandoned, 'image/webp'))).toBeNull();
    expect(await query('SELECT id FROM uploads WHERE id = $1', [abandoned])).toHaveLength(0);
    expect(await store.head(inputObjectKey(alice.sub, expiredInput, 'image/png'))).toBeNull();
    expect(await query('SELECT id FROM inputs WHERE id = $1', [expiredInput])).toHaveLength(0);
  }, 200_000);
});

describe('the workers’ periodic configuration', () => {
  it('maps JANITOR_INTERVAL_SECONDS to the closest evenly spaced cron', () => {
    expect(cronForInterval(60_000)).toBe('* * * * *');
    expect(cronForInterval(10_000)).toBe('* * * * *');
    expect(cronForInterval(300_000)).toBe('*/5 * * * *');
    expect(cronForInterval(7 * 60_000)).toBe('*/6 * * * *');
    expect(cronForInterval(3_600_000)).toBe('0 * * * *');
    expect(cronForInterval(5 * 3_600_000)).toBe('0 */4 * * *');
    expect(cronForInterval(7 * 24 * 3_600_000)).toBe('0 0 * * *');
    expect(() => cronForInterval(0)).toThrow(RangeError);
  });

  it('runs nothing when the interval is 0 or periodic work is off here', async () => {
    const off = testConfig(db.url, { JANITOR_INTERVAL_SECONDS: '0', PERIODIC_WORK: 'on' });
    expect(workerPeriodicTasks({ config: off, pool: t.systemPool, store })).toEqual([]);
    const elsewhere = testConfig(db.url, { JANITOR_INTERVAL_SECONDS: '300', PERIODIC_WORK: 'off' });
    expect(workerPeriodicTasks({ config: elsewhere, pool: t.systemPool, store }).map((x) => x.cron)).toEqual([
      '*/5 * * * *',
      '*/5 * * * *',
      '*/5 * * * *',
    ]);
    expect(await startWorkerPeriodicWork({ config: elsewhere, pool: t.systemPool, store })).toBeNull();
  });
});
