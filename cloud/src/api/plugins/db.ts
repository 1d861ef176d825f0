/**
 * `db`: the API's pools on the instance. `app.db.app` (role atelier_app, RLS) serves every user
 * query through withUserTx; `app.db.system` (role atelier_system, BYPASSRLS) serves webhooks and
 * periodic work. `app.db.now()` is the clock override tests set (null = the database's now()).
 * The pools belong to the caller (server.ts, tests), which ends them after the app closes.
 */
import fp from 'fastify-plugin';
import type { Pool } from '../../db/pool.ts';

export interface DbPluginOptions {
  pool: Pool;
  systemPool?: Pool | undefined;
  now?: (() => Date | null) | undefined;
}

export interface AppDb {
  app: Pool;
  system: Pool | null;
  now: () => Date | null;
}

declare module 'fastify' {
  interface FastifyInstance {
    db: AppDb;
  }
}

export default fp<DbPluginOptions>(
  async (app, opts) => {
    const now = opts.now;
    app.decorate('db', { app: opts.pool, system: opts.systemPool ?? null, now: () => now?.() ?? null });
  },
  { name: 'db', fastify: '5.x' },
);
