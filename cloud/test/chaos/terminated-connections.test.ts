/**
 * Found by the chaos run: `pg_terminate_backend` on a connection that a transaction holds between
 * two statements made pg emit 'error' on the checked-out client, which nobody listened to, and the
 * API process died. Now the transaction fails with a database-unavailable error (503 to the
 * caller), the pool drops that connection and keeps serving.
 */
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { createPool, isDatabaseUnavailable } from '../../src/db/pool.ts';
import { withSystemTx } from '../../src/db/tx.ts';
import { createTestDatabase } from '../support/index.ts';

const db = await createTestDatabase();
const admin = new pg.Client({ connectionString: db.url });
await admin.connect();
afterAll(() => admin.end());

describe('a terminated database connection', () => {
  it('fails the transaction holding it, without ending the process, and the pool serves the next one', async () => {
    const pool = createPool(db.config, 'system', { max: 2 });
    const crashes: unknown[] = [];
    const onUncaught = (e: unknown) => crashes.push(e);
    process.on('uncaughtException', onUncaught);
    try {
      const failed = withSystemTx(pool, async (tx) => {
        const { rows } = await tx.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
        // Between two statements, as a request that awaits something else would be.
        await admin.query('SELECT pg_terminate_backend($1)', [rows[0]!.pid]);
        await new Promise((r) => setTimeout(r, 300));
        await tx.query('SELECT 1');
      });
      const err = await failed.then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).not.toBeNull();
      expect(isDatabaseUnavailable(err)).toBe(true);
      expect(crashes).toEqual([]);
      const again = await withSystemTx(pool, (tx) => tx.query<{ one: number }>('SELECT 1 AS one'));
      expect(again.rows[0]!.one).toBe(1);
    } finally {
      process.off('uncaughtException', onUncaught);
      await pool.end();
    }
  });
});
