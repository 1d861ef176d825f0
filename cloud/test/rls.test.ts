import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPool, type Pool } from '../src/db/pool.ts';
import { withUserTx } from '../src/db/tx.ts';
import { createUsageReader } from '../src/quota/usage.ts';
import { createTestDatabase, type TestDatabase } from './support/index.ts';

/**
 * User-owned tables, read from the schema rather than listed by hand, so a new table with a
 * `user_id` column cannot slip past: every one of them (and `users`, whose own id is the user)
 * must have RLS enabled and forced. Filled in beforeAll.
 */
let TABLES: string[] = [];
let db: TestDatabase;
let app: Pool;
let admin: Pool;

beforeAll(async () => {
  db = await createTestDatabase();
  app = createPool(db.config, 'app', { max: 2 });
  admin = createPool(db.config, 'admin', { max: 2 });
  const owned = await admin.query<{ table_name: string }>(
    `SELECT c.table_name FROM information_schema.columns c
       JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name
      WHERE c.table_schema = 'public' AND c.column_name = 'user_id' AND t.table_type = 'BASE TABLE'
      ORDER BY c.table_name`,
  );
  TABLES = ['users', ...owned.rows.map((r) => r.table_name)];
  for (const id of ['u-a', 'u-b']) {
    await admin.query(`INSERT INTO users (id, email) VALUES ($1, $1 || '@x.test')`, [id]);
    await admin.query(
      `INSERT INTO generations (id, user_id, params, image_count, priority, progress_total, period_start)
       VALUES ($1, $2, '{}', 1, 0, 1, date_trunc('month', now()))`,
      [`gen_${id}`, id],
    );
    await admin.query(
      `INSERT INTO usage_ledger (user_id, generation_id, kind, amount, period_start) VALUES ($1, $2, 'reserve', 1, date_trunc('month', now()))`,
      [id, `gen_${id}`],
    );
  }
});
/** The user-owned tables the API's role holds SELECT on. */
async function appReadable(): Promise<string[]> {
  const r = await admin.query<{ t: string }>(
    `SELECT t FROM unnest($1::text[]) AS t WHERE has_table_privilege('atelier_app', 'public.' || t, 'SELECT') ORDER BY t`,
    [TABLES],
  );
  return r.rows.map((row) => row.t);
}

afterAll(async () => {
  await app.end();
  await admin.end();
});

describe('row level security and roles', () => {
  it('the API connects as a non-superuser that owns no table and cannot bypass RLS', async () => {
    const r = await app.query(
      `SELECT current_user AS u, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user`,
    );
    expect(r.rows[0]).toEqual({ u: 'atelier_app', rolsuper: false, rolbypassrls: false });
    const owned = await app.query(`SELECT count(*)::int AS n FROM pg_tables WHERE tableowner = current_user`);
    expect(owned.rows[0].n).toBe(0);
    // The schema is the list: at least the tables the architecture names, and whatever is added later.
    expect(TABLES).toEqual(
      expect.arrayContaining([
        'users',
        'subscriptions',
        'usage_periods',
        'usage_ledger',
        'generations',
        'images',
        'boards',
      ]),
    );
    const forced = await admin.query<{ relname: string; relrowsecurity: boolean; relforcerowsecurity: boolean }>(
      `SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND c.relname = ANY($1) ORDER BY c.relname`,
      [TABLES],
    );
    expect(forced.rows).toHaveLength(TABLES.length);
    const unprotected = forced.rows.filter((row) => !(row.relrowsecurity && row.relforcerowsecurity));
    expect(unprotected.map((row) => row.relname)).toEqual([]);
    // Every one the app role may read has a per-user policy; one it may not read at all
    // (stripe_events: only the webhook's BYPASSRLS role touches it) is deny-all by having none.
    const policies = await admin.query<{ tablename: string }>(
      `SELECT DISTINCT tablename FROM pg_policies WHERE schemaname = 'public' AND tablename = ANY($1)`,
      [TABLES],
    );
    const readable = await appReadable();
    expect(readable.length).toBeGreaterThan(0);
    expect(readable.filter((t) => !policies.rows.some((p) => p.tablename === t))).toEqual([]);
  });

  it('with no user set, every user-owned table shows zero rows (or refuses the app role outright)', async () => {
    const readable = await appReadable();
    for (const table of TABLES.filter((t) => !readable.includes(t))) {
      await expect(app.query(`SELECT count(*)::int AS n FROM ${table}`), table).rejects.toThrow(/permission denied/);
    }
    for (const table of readable) {
      const r = await app.query(`SELECT count(*)::int AS n FROM ${table}`);
      expect(r.rows[0].n, table).toBe(0);
    }
    const seen = await admin.query(`SELECT count(*)::int AS n FROM generations`);
    expect(seen.rows[0].n).toBe(2);
  });

  it('a user sees only their own rows, even asking by id, and cannot write rows for another user', async () => {
    await withUserTx(app, 'u-a', async (tx) => {
      expect((await tx.query('SELECT id FROM generations')).rows).toEqual([{ id: 'gen_u-a' }]);
      expect((await tx.query(`SELECT id FROM generations WHERE id = 'gen_u-b'`)).rows).toEqual([]);
      expect((await tx.query(`UPDATE generations SET status = 'canceled' WHERE id = 'gen_u-b'`)).rowCount).toBe(0);
    });
    await expect(
      withUserTx(app, 'u-a', (tx) =>
        tx.query(`INSERT INTO usage_ledger (user_id, kind, amount, period_start) VALUES ('u-b', 'adjust', -5, now())`),
      ),
    ).rejects.toThrow(/row-level security/);
  });

  it('the setting does not leak to the next transaction on the same connection', async () => {
    const client = await app.connect();
    try {
      await client.query('BEGIN');
      await client.query(`SELECT set_config('app.user_id', 'u-a', true)`);
      expect((await client.query('SELECT count(*)::int AS n FROM generations')).rows[0].n).toBe(1);
      await client.query('COMMIT');
      expect((await client.query('SELECT count(*)::int AS n FROM generations')).rows[0].n).toBe(0);
    } finally {
      client.release();
    }
  });

  it('the ledger is append-only and the app role cannot change the schema', async () => {
    await expect(withUserTx(app, 'u-a', (tx) => tx.query('UPDATE usage_ledger SET amount = 0'))).rejects.toThrow(
      /permission denied/,
    );
    await expect(withUserTx(app, 'u-a', (tx) => tx.query('DELETE FROM usage_ledger'))).rejects.toThrow(
      /permission denied/,
    );
    await expect(app.query('ALTER TABLE generations DISABLE ROW LEVEL SECURITY')).rejects.toThrow(/must be owner/);
    await expect(app.query('DROP TABLE generations')).rejects.toThrow(/must be owner/);
    await expect(app.query('CREATE TABLE evil (id int)')).rejects.toThrow(/permission denied/);
    const system = new pg.Client({ connectionString: db.config.database.systemUrl });
    await system.connect();
    try {
      await expect(system.query('DELETE FROM usage_ledger')).rejects.toThrow(/permission denied/);
      expect((await system.query('SELECT count(*)::int AS n FROM generations')).rows[0].n).toBe(2);
    } finally {
      await system.end();
    }
  });

  it('batched usage reads (GET /v1/me) give each user their own row and leave no user set on the connection', async () => {
    for (const [id, used] of [
      ['u-a', 3],
      ['u-b', 7],
    ] as const)
      await admin.query(
        `INSERT INTO usage_periods (user_id, period_start, period_end, plan, used, "limit")
         VALUES ($1, date_trunc('month', now(), 'UTC'), date_trunc('month', now(), 'UTC') + interval '1 month', 'free', $2, 100)
         ON CONFLICT (user_id, period_start) DO UPDATE SET used = EXCLUDED.used`,
        [id, used],
      );
    const one = createPool(db.config, 'app', { max: 1 });
    try {
      let roundTrips = 0;
      const counting = {
        query: (...args: Parameters<Pool['query']>) => {
          roundTrips++;
          return (one.query as (...a: unknown[]) => unknown)(...args);
        },
      } as unknown as Pool;
      const read = createUsageReader(counting);
      // Same event-loop turn: one statement for all four.
      const rows = await Promise.all([read('u-a'), read('u-b'), read('u-nobody'), read('u-a')]);
      expect(roundTrips).toBe(1);
      expect(rows.map((r) => r && { used: r.used, email: r.email })).toEqual([
        { used: 3, email: 'u-a@x.test' },
        { used: 7, email: 'u-b@x.test' },
        null,
        { used: 3, email: 'u-a@x.test' },
      ]);
      // The per-user setting ended with the statement: the same connection now sees nothing.
      expect((await one.query('SELECT count(*)::int AS n FROM usage_periods')).rows[0].n).toBe(0);
      expect((await one.query(`SELECT current_setting('app.user_id', true) AS s`)).rows[0].s).toBeFalsy();
      // Read again after a change: nothing is cached.
      await admin.query(`UPDATE usage_periods SET used = 9 WHERE user_id = 'u-b'`);
      expect((await read('u-b'))?.used).toBe(9);
    } finally {
      await one.end();
    }
  });
});
