/**
 * The restore procedure of docs/OPERATIONS.md ("Backups and restore"), run for real: a database
 * migrated and filled the way the service does it is dumped with pg_dump, restored with
 * pg_restore into a fresh database, migrated again (which must find nothing to apply), and
 * compared row for row; RLS must still hold for the app role in the restored copy.
 *
 * pg_dump cannot dump a newer server than itself, so this runs against the machine's PostgreSQL
 * (127.0.0.1:5432, trust auth; the same major version line as the installed pg_dump), not the
 * run's embedded PostgreSQL 18. PG_RESTORE_TEST_URL overrides the server.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrate } from '../src/db/migrate.ts';
import { createPool } from '../src/db/pool.ts';
import { withUserTx } from '../src/db/tx.ts';
import { testConfig } from './support/index.ts';

// The test's own server, not the run's; read like the other fixtures' overrides.
const SERVER = (process.env.PG_RESTORE_TEST_URL ?? 'postgres://postgres@127.0.0.1:5432/').replace(/\/?$/, '/');
const suffix = randomBytes(4).toString('hex');
const SOURCE = `atelier_backup_src_${suffix}`;
const TARGET = `atelier_backup_dst_${suffix}`;
const work = mkdtempSync(path.join(tmpdir(), 'atelier-backup-'));
const dumpFile = path.join(work, 'atelier.dump');

async function admin<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: `${SERVER}postgres` });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

/** What a person would check after a restore: counts and content of what users see and pay for. */
async function snapshot(url: string) {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const q = async (sql: string) => (await c.query(sql)).rows;
    return {
      users: await q('SELECT id, email, created_at FROM users ORDER BY id'),
      generations: await q('SELECT id, user_id, image_count, params FROM generations ORDER BY id'),
      images: await q('SELECT id, user_id, prompt, sha256, metadata, server_seq::text FROM images ORDER BY id'),
      ledger: await q('SELECT user_id, generation_id, kind, amount FROM usage_ledger ORDER BY id'),
      migrations: await q('SELECT version, name FROM schema_migrations ORDER BY version'),
    };
  } finally {
    await c.end();
  }
}

beforeAll(async () => {
  await admin((c) => c.query(`CREATE DATABASE ${SOURCE}`));
  const config = testConfig(`${SERVER}${SOURCE}`);
  await migrate(config);
  const system = new pg.Client({ connectionString: `${SERVER}${SOURCE}` });
  await system.connect();
  try {
    for (const [i, id] of ['u-alice', 'u-bob'].entries()) {
      await system.query(`INSERT INTO users (id, email) VALUES ($1, $1 || '@restore.test')`, [id]);
      await system.query(
        `INSERT INTO generations (id, user_id, params, image_count, priority, progress_total, period_start)
         VALUES ($1, $2, $3, 1, 0, 1, date_trunc('month', now()))`,
        [`gen_${id}`, id, JSON.stringify({ prompt: `a ${id} lighthouse` })],
      );
      await system.query(
        `INSERT INTO usage_ledger (user_id, generation_id, kind, amount, period_start)
         VALUES ($1, $2, 'reserve', 1, date_trunc('month', now()))`,
        [id, `gen_${id}`],
      );
      await system.query(
        `INSERT INTO images (id, user_id, generation_id, batch_index, width, height, metadata, prompt, size, sha256, thumb_mime)
         VALUES ($1, $2, $3, 0, 512, 512, $4, $5, 1234, $6, 'image/webp')`,
        [
          `img_${id}`,
          id,
          `gen_${id}`,
          JSON.stringify({ positive_prompt: `a ${id} lighthouse`, seed: 42 + i }),
          `a ${id} lighthouse`,
          String(i).repeat(64),
        ],
      );
    }
  } finally {
    await system.end();
  }
}, 120_000);

afterAll(async () => {
  await admin(async (c) => {
    for (const db of [SOURCE, TARGET]) await c.query(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
  });
  rmSync(work, { recursive: true, force: true });
});

describe('backup and restore (docs/OPERATIONS.md)', () => {
  it('pg_dump → pg_restore into a fresh database → migrate: the same rows, nothing to migrate, RLS intact', async () => {
    execFileSync('pg_dump', ['--format=custom', `--file=${dumpFile}`, `${SERVER}${SOURCE}`], { stdio: 'pipe' });
    expect(statSync(dumpFile).size).toBeGreaterThan(0);

    await admin((c) => c.query(`CREATE DATABASE ${TARGET}`));
    execFileSync('pg_restore', ['--exit-on-error', `--dbname=${SERVER}${TARGET}`, dumpFile], { stdio: 'pipe' });
    // Re-grants database-level rights (CONNECT is not part of a dump) and checks the schema is current.
    const { applied } = await migrate(testConfig(`${SERVER}${TARGET}`));
    expect(applied).toEqual([]);

    const before = await snapshot(`${SERVER}${SOURCE}`);
    const after = await snapshot(`${SERVER}${TARGET}`);
    expect(after.users).toHaveLength(2);
    expect(after.images).toHaveLength(2);
    expect(after.ledger).toHaveLength(2);
    expect(after).toEqual(before);

    // The app role still sees only the user it acts for in the restored copy.
    const app = createPool(testConfig(`${SERVER}${TARGET}`), 'app', { max: 1 });
    try {
      const seen = await withUserTx(app, 'u-alice', async (tx) => {
        const r = await tx.query<{ id: string }>('SELECT id FROM images ORDER BY id');
        return r.rows.map((row) => row.id);
      });
      expect(seen).toEqual(['img_u-alice']);
      const anonymous = await app.query<{ n: number }>('SELECT count(*)::int AS n FROM images');
      expect(anonymous.rows[0]!.n).toBe(0);
    } finally {
      await app.end();
    }
  });

  it('a restore into a database that is not empty stops at the first conflict instead of merging', async () => {
    expect(() =>
      execFileSync('pg_restore', ['--exit-on-error', `--dbname=${SERVER}${TARGET}`, dumpFile], { stdio: 'pipe' }),
    ).toThrow(/already exists/);
  });
});
