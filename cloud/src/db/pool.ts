import pg from 'pg';
import type { Config } from '../config.ts';

export type Pool = pg.Pool;
export type PoolClient = pg.PoolClient;
/** Anything that runs SQL: a pool, a client, or a client inside a transaction. */
export interface Queryable {
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values?: unknown[]): Promise<pg.QueryResult<R>>;
}

const INT8_OID = 20;
/**
 * Atelier's type parsers, for its own pools only: bigint (int8) → number (counts here stay far
 * below 2^53); everything else as pg parses it (timestamptz → Date). Scoped through the pool's
 * `types` option, so another pg client in the same process (pg-boss, a library, a test's plain
 * `new pg.Client`) keeps pg's defaults, where int8 is a string.
 */
export const ATELIER_TYPES: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === INT8_OID && format !== 'binary'
      ? (v: string) => Number(v)
      : pg.types.getTypeParser(oid, format ?? 'text')) as pg.CustomTypesConfig['getTypeParser'],
};

export type PoolRole = 'app' | 'system' | 'admin';

/** Postgres SQLSTATEs that mean "the database cannot serve this now", not "the request is wrong". */
const UNAVAILABLE_STATES = new Set([
  '57014', // query_canceled: statement_timeout
  '55P03', // lock_not_available: lock_timeout
  '53300', // too_many_connections
  '53400', // configuration_limit_exceeded
  '57P01', // admin_shutdown
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now (starting up, recovery)
  '25P03', // idle_in_transaction_session_timeout
  '40001', // serialization_failure
  '40P01', // deadlock_detected
]);
const UNAVAILABLE_MESSAGES = [
  'timeout exceeded when trying to connect',
  'Connection terminated',
  'connect ECONNREFUSED',
  'Client has encountered a connection error',
  'Query read timeout',
];

/** True when an error means the database is down, saturated or timed out (answer 503, retryable). */
export function isDatabaseUnavailable(err: unknown): boolean {
  if (!err || typeof err !== 'object') return false;
  const e = err as { code?: unknown; message?: unknown; cause?: unknown };
  if (typeof e.code === 'string' && (UNAVAILABLE_STATES.has(e.code) || e.code.startsWith('08'))) return true;
  if (e.code === 'ECONNREFUSED' || e.code === 'ECONNRESET' || e.code === 'ETIMEDOUT') return true;
  if (typeof e.message === 'string' && UNAVAILABLE_MESSAGES.some((m) => (e.message as string).includes(m))) return true;
  return e.cause !== undefined && e.cause !== err && isDatabaseUnavailable(e.cause);
}

/**
 * A connection pool for one of the three identities (see docs/decisions/0011-rls-and-roles.md):
 * `app` (the API, RLS enforced), `system` (worker and webhooks, BYPASSRLS), `admin` (migrations, CLI).
 */
export function createPool(config: Config, role: PoolRole = 'app', opts: { max?: number } = {}): Pool {
  const connectionString =
    role === 'app' ? config.database.appUrl : role === 'system' ? config.database.systemUrl : config.database.url;
  const db = config.database;
  const pool = new pg.Pool({
    connectionString,
    max: opts.max ?? db.poolMax,
    application_name: `atelier-${role}`,
    types: ATELIER_TYPES,
    idleTimeoutMillis: 30_000,
    // A request never waits forever: for a pooled connection, a row lock or a statement. Past
    // these the API answers 503 SERVICE_UNAVAILABLE (retryable), see api/errors.ts.
    connectionTimeoutMillis: db.acquireTimeoutMs,
    ...(role === 'app'
      ? {
          statement_timeout: db.statementTimeoutMs,
          lock_timeout: db.lockTimeoutMs,
          idle_in_transaction_session_timeout: db.statementTimeoutMs * 2,
        }
      : {}),
  });
  // An idle client losing its server (restart, failover) must not crash the process.
  pool.on('error', () => {});
  // Nor may a checked-out one between two statements of a transaction (pg_terminate_backend, a
  // failover): pg emits 'error' on the client itself then, and an unheard 'error' ends the process
  // (seen in the chaos run, cloud/test/chaos). The next statement fails instead, the request
  // answers 503 SERVICE_UNAVAILABLE, and the pool drops the client on release.
  pool.on('connect', (client) => client.on('error', () => {}));
  return pool;
}
