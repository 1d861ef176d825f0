/**
 * The migration runner. Applies `migrations/NNNN_name.sql` in order, each in its own transaction
 * as role atelier_owner (so the owner of every table is a NOLOGIN role, never the API), records
 * each version, then installs pg-boss's schema and queues. Serialised across processes with an
 * advisory lock, so several replicas may start at once.
 *
 * Numbering: 0001–0049 cloud core, 0050–0069 storage/worker, 0070–0089 billing, 0090–0099 operations. A migration
 * that adds a user-owned table must ENABLE + FORCE RLS on it and GRANT what atelier_app and
 * atelier_system need (there are no default privileges, on purpose).
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { APP_ROLE, SYSTEM_ROLE, type Config } from '../config.ts';
import { installPeriodicQueues } from '../periodic/periodic-work.ts';
import { installQueues, PGBOSS_SCHEMA } from '../queue/pg-boss-job-queue.ts';
import type { Queryable } from './pool.ts';

export const OWNER_ROLE = 'atelier_owner';
export const MIGRATIONS_DIR = path.join(import.meta.dirname, 'migrations');
const LOCK_KEY = 0x61_74_65_6c; // 'atel'

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export function listMigrations(dir = MIGRATIONS_DIR): Migration[] {
  const seen = new Map<number, string>();
  return readdirSync(dir)
    .filter((f) => /^\d{4}_[a-z0-9_]+\.sql$/.test(f))
    .sort()
    .map((f) => {
      const version = Number(f.slice(0, 4));
      if (seen.has(version)) throw new Error(`Two migrations share version ${version}: ${seen.get(version)}, ${f}`);
      seen.set(version, f);
      return { version, name: f.slice(5, -4), sql: readFileSync(path.join(dir, f), 'utf8') };
    });
}

/** Creates the roles (cluster-wide, idempotent, safe to race) and their grants on this database. */
async function bootstrapRoles(c: pg.Client, password: string): Promise<void> {
  const pw = c.escapeLiteral(password);
  const ensure = (role: string, attrs: string) => `DO $$ BEGIN
      CREATE ROLE ${role} ${attrs};
    EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$;`;
  await c.query(ensure(OWNER_ROLE, 'NOLOGIN'));
  await c.query(ensure(APP_ROLE, 'LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS'));
  await c.query(ensure(SYSTEM_ROLE, 'LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE BYPASSRLS'));
  await c.query(`ALTER ROLE ${APP_ROLE} WITH LOGIN PASSWORD ${pw}`);
  await c.query(`ALTER ROLE ${SYSTEM_ROLE} WITH LOGIN PASSWORD ${pw}`);
  // The migrator acts as the owner (needs membership); the owner creates in public.
  await c.query(`GRANT ${OWNER_ROLE} TO current_user`).catch(() => undefined);
  await c.query(`GRANT USAGE, CREATE ON SCHEMA public TO ${OWNER_ROLE}`);
  await c.query(`GRANT USAGE ON SCHEMA public TO ${APP_ROLE}, ${SYSTEM_ROLE}`);
  await c.query(`REVOKE CREATE ON SCHEMA public FROM PUBLIC`);
  const db = c.escapeIdentifier((await c.query<{ d: string }>('SELECT current_database() AS d')).rows[0]!.d);
  await c.query(`GRANT CONNECT ON DATABASE ${db} TO ${APP_ROLE}, ${SYSTEM_ROLE}`);
}

async function ensureTable(c: Queryable): Promise<void> {
  await c.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
    version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`);
}

export async function appliedVersions(c: Queryable): Promise<number[]> {
  const exists = await c.query(`SELECT to_regclass('public.schema_migrations') IS NOT NULL AS e`);
  if (!exists.rows[0]?.e) return [];
  const r = await c.query<{ version: number }>('SELECT version FROM schema_migrations ORDER BY version');
  return r.rows.map((row) => row.version);
}

/** Pending migrations by version; empty when the database is current. */
export async function pendingMigrations(c: Queryable, all = listMigrations()): Promise<number[]> {
  const applied = new Set(await appliedVersions(c));
  return all.filter((m) => !applied.has(m.version)).map((m) => m.version);
}

export interface MigrateResult {
  applied: string[];
}

/** Migrates the database at `config.database.url` (the migrator connection). */
export async function migrate(config: Config, log: (line: string) => void = () => {}): Promise<MigrateResult> {
  const c = new pg.Client({ connectionString: config.database.url, application_name: 'atelier-migrate' });
  await c.connect();
  const applied: string[] = [];
  try {
    await c.query('SELECT pg_advisory_lock($1)', [LOCK_KEY]);
    await bootstrapRoles(c, config.database.rolePassword);
    await c.query(`SET ROLE ${OWNER_ROLE}`);
    await ensureTable(c);
    await c.query('GRANT SELECT ON schema_migrations TO ' + `${APP_ROLE}, ${SYSTEM_ROLE}`);
    await c.query('RESET ROLE');
    const done = new Set(await appliedVersions(c));
    for (const m of listMigrations()) {
      if (done.has(m.version)) continue;
      await c.query('BEGIN');
      try {
        await c.query(`SET LOCAL ROLE ${OWNER_ROLE}`);
        await c.query(m.sql);
        await c.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [m.version, m.name]);
        await c.query('COMMIT');
      } catch (e) {
        await c.query('ROLLBACK');
        throw new Error(`Migration ${m.version}_${m.name} failed: ${(e as Error).message}`, { cause: e });
      }
      applied.push(`${String(m.version).padStart(4, '0')}_${m.name}`);
      log(`applied ${applied.at(-1)}`);
    }
    await installQueues(config.database.url, config.queue);
    await installPeriodicQueues(config.database.url);
    // Runtime roles use pg-boss's tables and functions; they cannot change them.
    const roles = `${APP_ROLE}, ${SYSTEM_ROLE}`;
    await c.query(`GRANT USAGE ON SCHEMA ${PGBOSS_SCHEMA} TO ${roles}`);
    await c.query(`GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA ${PGBOSS_SCHEMA} TO ${roles}`);
    await c.query(`GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA ${PGBOSS_SCHEMA} TO ${roles}`);
    await c.query(`GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA ${PGBOSS_SCHEMA} TO ${roles}`);
    // …except that the app role may not read job payloads (migration 0090).
    await c.query('SELECT atelier_restrict_queue_privileges($1)', [APP_ROLE]);
  } finally {
    await c.query('SELECT pg_advisory_unlock($1)', [LOCK_KEY]).catch(() => undefined);
    await c.end();
  }
  return { applied };
}
