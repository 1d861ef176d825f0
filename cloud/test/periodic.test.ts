// Periodic work runs once per cluster: two API instances (separate pools, separate pg-boss
// instances) against one database both schedule the billing review sweep, and each occurrence runs
// exactly once — seen in the queue's job rows and in periodic_runs. A per-replica timer (what this
// replaced) would run it twice per period.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BILLING_REVIEW_QUEUE } from '../src/periodic/periodic-work.ts';
import { buildTestApp, createTestDatabase, type TestApp, type TestDatabase } from './support/index.ts';
import { PEER_SECRET_KEY, StripePeer } from './support/stripe-peer.ts';

let peer: StripePeer;
let db: TestDatabase;
const apps: TestApp[] = [];

beforeAll(async () => {
  peer = await StripePeer.start();
  db = await createTestDatabase({
    STRIPE_SECRET_KEY: PEER_SECRET_KEY,
    STRIPE_WEBHOOK_SECRET: 'whsec_periodic_test',
    STRIPE_PRICE_PRO: 'price_pro_monthly',
    STRIPE_API_HOST: '127.0.0.1',
    STRIPE_API_PORT: String(peer.port),
    STRIPE_API_PROTOCOL: 'http',
    PUBLIC_API_URL: 'https://api.atelier.test',
    PERIODIC_WORK: 'on',
    BILLING_REVIEW_CRON: '* * * * *',
    PERIODIC_CRON_MONITOR_SECONDS: '2',
  });
  apps.push(await buildTestApp({ db }), await buildTestApp({ db }));
}, 60_000);

afterAll(async () => {
  await Promise.all(apps.map((a) => a.close()));
  await peer?.close();
});

interface Run {
  job_id: string;
  ok: boolean;
  minute: string;
}

async function runs(): Promise<Run[]> {
  const c = new pg.Client({ connectionString: db.url });
  await c.connect();
  try {
    const r = await c.query<Run>(
      `SELECT job_id::text, ok, to_char(date_trunc('minute', started_at), 'HH24:MI') AS minute
         FROM periodic_runs WHERE task = $1 ORDER BY started_at`,
      [BILLING_REVIEW_QUEUE],
    );
    return r.rows;
  } finally {
    await c.end();
  }
}

describe('periodic work across two API instances', () => {
  it('the billing review sweep runs once per minute, not once per instance', async () => {
    // Two occurrences: up to two minutes and the cron pass's interval.
    const deadline = Date.now() + 170_000;
    let seen: Run[] = [];
    while (Date.now() < deadline) {
      seen = await runs();
      if (seen.length >= 2) break;
      await new Promise((r) => setTimeout(r, 2_000));
    }
    expect(seen.length).toBeGreaterThanOrEqual(2);
    // Give a duplicate of the latest occurrence time to appear (the other instance's cron pass).
    await new Promise((r) => setTimeout(r, 6_000));
    seen = await runs();
    const minutes = seen.map((r) => r.minute);
    expect(new Set(minutes).size).toBe(minutes.length);
    expect(seen.every((r) => r.ok)).toBe(true);

    // The queue agrees: one job per occurrence, each completed once.
    const c = new pg.Client({ connectionString: db.url });
    await c.connect();
    try {
      // Every run is a job of the queue, and no minute has more than one job.
      const jobs = await c.query<{ id: string }>('SELECT id::text FROM pgboss.job WHERE name = $1', [
        BILLING_REVIEW_QUEUE,
      ]);
      expect(jobs.rows.map((j) => j.id)).toEqual(expect.arrayContaining(seen.map((r) => r.job_id)));
      const doubled = await c.query(
        `SELECT date_trunc('minute', created_on) FROM pgboss.job WHERE name = $1 GROUP BY 1 HAVING count(*) > 1`,
        [BILLING_REVIEW_QUEUE],
      );
      expect(doubled.rowCount).toBe(0);
      const schedules = await c.query('SELECT name FROM pgboss.schedule WHERE name = $1', [BILLING_REVIEW_QUEUE]);
      expect(schedules.rowCount).toBe(1);
    } finally {
      await c.end();
    }
  }, 200_000);
});
