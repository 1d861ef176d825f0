import pg from 'pg';
import type { Config } from '../config.ts';

export type Pool = pg.Pool;
export type PoolClient = pg.PoolClient;
/** Anything that runs SQL: a pool, a client, or a client inside a transaction. */
export interface Queryable {
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values?: unknown[]): Promise<pg.QueryResult<R>>;
}

// timestamptz → Date (default), bigint (int8) → number: counts here stay far below 2^53.
pg.types.setTypeParser(20, (v) => Number(v));

export type PoolRole = 'app' | 'system' | 'admin';

/**
 * A connection pool for one of the three identities (see docs/decisions/0011-rls-and-roles.md):
 * `app` (the API, RLS enforced), `system` (worker and webhooks, BYPASSRLS), `admin` (migrations, CLI).
 */
export function createPool(config: Config, role: PoolRole = 'app', opts: { max?: number } = {}): Pool {
  const connectionString =
    role === 'app' ? config.database.appUrl : role === 'system' ? config.database.systemUrl : config.database.url;
  const pool = new pg.Pool({
    connectionString,
    max: opts.max ?? config.database.poolMax,
    application_name: `atelier-${role}`,
    idleTimeoutMillis: 30_000,
  });
  // An idle client losing its server (restart, failover) must not crash the process.
  pool.on('error', () => {});
  return pool;
}
