/**
 * Zero-loss rolling restarts, light form (the long one: `npm run chaos`). Two API processes and
 * two workers behind a round-robin proxy; three desktops (the desktop's own cloud client) keep
 * generating, reading the gallery and listening on their events sockets while every process is
 * restarted in turn — SIGTERM for a deploy, SIGKILL for a crash — and the database drops the
 * app's connections. See harness.ts for what is checked.
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
        steps: [
          { kind: 'restart', role: 'api', index: 0, signal: 'SIGTERM' },
          { kind: 'restart', role: 'worker', index: 0, signal: 'SIGTERM' },
          { kind: 'restart', role: 'api', index: 1, signal: 'SIGTERM' },
          { kind: 'kill-db-connections' },
          { kind: 'restart', role: 'worker', index: 1, signal: 'SIGKILL' },
          { kind: 'restart', role: 'api', index: 0, signal: 'SIGKILL' },
          { kind: 'steady', ms: 2_000 },
        ],
        windowTailMs: 1_000,
        settleMs: 45_000,
        heartbeatSeconds: 10,
        load: { inFlight: 2, maxJobs: 60, readEveryMs: 250, submitGapMs: 100 },
      },
    );
    console.log(formatFigures(result));

    expect(result.problems).toEqual([]);
    const f = result.figures;
    // The load was real and the chaos reached the clients: work was done before and after,
    // connections were cut and retried, and every socket came back.
    expect(f.jobs.accepted).toBeGreaterThan(10);
    expect(f.jobs.succeeded + f.jobs.failed).toBe(f.jobs.accepted);
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
