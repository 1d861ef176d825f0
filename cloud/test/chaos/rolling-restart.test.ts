/**
 * Zero-loss rolling restarts, light form (the long one: `npm run chaos`). Two API processes and
 * two workers behind a round-robin proxy; three desktops (the desktop's own cloud client) keep
 * generating, reading the gallery and listening on their events sockets while every process is
 * restarted — SIGTERM for a deploy, SIGKILL for a crash — and the database drops the app's
 * connections. See harness.ts for what is checked.
 */
import { mkdtempSync, rmSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createTestDatabase, createTestUser, stackInfo } from '../support/index.ts';
import { formatFigures, runChaos } from './harness.ts';

const workDir = mkdtempSync(path.join(tmpdir(), 'atelier-chaos-'));
chmodSync(workDir, 0o755);
afterAll(() => rmSync(workDir, { recursive: true, force: true }));

describe('rolling restarts under load', () => {
  it('loses no job, charges each once, refunds each failure once, and every client rides it out', async () => {
    const db = await createTestDatabase();
    const s = stackInfo();
    const users = await Promise.all([createTestUser(), createTestUser(), createTestUser()]);
    const result = await runChaos(
      {
        databaseUrl: db.url,
        cognito: { endpoint: s.cognitoEndpoint, userPoolId: s.userPoolId, clientId: s.clientId, issuer: s.issuer },
        users: users.map((u) => ({ email: u.email, password: u.password })),
        workDir,
      },
      {
        steadyMs: 5_000,
        // Each process once: the API and the worker services deploy independently, so one of
        // each restarts at a time (SIGTERM, as a deploy does), then the database drops the app's
        // connections, then the other two crash (SIGKILL). `npm run chaos` runs every process
        // through both, over several rounds.
        steps: [
          {
            kind: 'together',
            steps: [
              { kind: 'restart', role: 'api', index: 0, signal: 'SIGTERM' },
              { kind: 'restart', role: 'worker', index: 0, signal: 'SIGTERM' },
            ],
          },
          { kind: 'kill-db-connections' },
          {
            kind: 'together',
            steps: [
              { kind: 'restart', role: 'api', index: 1, signal: 'SIGKILL' },
              { kind: 'restart', role: 'worker', index: 1, signal: 'SIGKILL' },
            ],
          },
          { kind: 'steady', ms: 3_000 },
        ],
        windowTailMs: 1_000,
        settleMs: 45_000,
        heartbeatSeconds: 10,
        load: { inFlight: 2, maxJobs: 60, readEveryMs: 250, submitGapMs: 100, failEvery: 5 },
      },
    );
    console.log(formatFigures(result));

    expect(result.problems).toEqual([]);
    const f = result.figures;
    // The load was real and the chaos reached the clients: work was done before and after,
    // connections were cut and retried, and every socket came back.
    expect(f.jobs.accepted).toBeGreaterThan(10);
    expect(f.jobs.succeeded + f.jobs.failed).toBe(f.jobs.accepted);
    // Every fifth job asks for a model with no weights: failures happen under chaos too, and
    // each was refunded exactly once (the audit checks the ledger row by row).
    expect(f.jobs.failed).toBeGreaterThan(0);
    expect(f.jobs.refunded).toBe(f.jobs.failed);
    expect(f.unabsorbedErrors).toBe(0);
    expect(f.retriesAbsorbed).toBeGreaterThan(0);
    expect(f.dbConnectionsKilled).toBeGreaterThan(0);
    for (const c of result.clients) {
      expect(c.errors).toEqual([]);
      expect(c.readies).toBeGreaterThanOrEqual(2);
      expect(c.accepted.every((a) => a.status === 'succeeded' || a.status === 'failed')).toBe(true);
    }
  }, 300_000);
});
