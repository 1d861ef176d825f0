/**
 * A fleet of desktops for the chaos run (cloud/test/chaos): one process, several signed-in users,
 * each with the desktop's own cloud client (src-main/services/cloud-client.ts) and its events
 * socket, driving steady load through the proxy in front of the API replicas — generations,
 * gallery reads, account reads — while the harness restarts what stands behind it.
 *
 * It lives outside cloud/ because cloud/ never imports desktop code; like a real desktop it
 * reaches the cloud over HTTP/WS only. Started by the harness with an IPC channel:
 *   harness → fleet  { type: 'start', … }   sign in, open sockets, start the load
 *   fleet → harness  { type: 'ready' }       every client signed in and its socket ready
 *   harness → fleet  { type: 'stop', settleMs }  stop submitting; wait (up to settleMs) until every
 *                                           accepted job is terminal in the client's own view
 *   fleet → harness  { type: 'report', … }  what each client saw (FleetReport)
 *
 * A client learns a job's end from its `generation.*` event, or — when the socket was down at the
 * time — from re-reading the job after the socket's next `ready` (what jobs.ts's reconcileCloud
 * does). Both are recorded, so the harness can tell a missed terminal state from a late one.
 */
import { randomUUID } from 'node:crypto';
import type { CloudEvent, GenerateRequestInput, GenerationStatus } from '@atelier/common';
import { AppError } from '@atelier/common';
import { createCloudClient, type CloudClient, type RetryNotice } from '../../src-main/services/cloud-client.ts';
import { InMemorySecretStore } from '../../src-main/services/secret-store.ts';

export interface FleetStart {
  type: 'start';
  apiUrl: string;
  cognito: { endpoint: string; userPoolId: string; clientId: string };
  users: { email: string; password: string }[];
  /** The generation every client submits (count 1, small and quick). */
  request: GenerateRequestInput;
  /** A model whose jobs fail on the worker, used by every `failEvery`-th submission (0 = never). */
  failModel: string;
  failEvery: number;
  /** Generations a client keeps in flight at once (at most the plan's concurrent-jobs limit). */
  inFlight: number;
  /** Stop submitting after this many accepted generations per client (stay under the quota). */
  maxJobs: number;
  /** Unit: ms between two gallery reads of one client. */
  readEveryMs: number;
  /** Unit: ms between a terminal job and the next submission of that client. */
  submitGapMs: number;
}

export interface FleetStop {
  type: 'stop';
  /** Unit: ms to wait for every accepted job to reach a terminal state in the client's view. */
  settleMs: number;
}

export type Via = 'response' | 'event' | 'reread';

export interface ClientReport {
  email: string;
  userId: string | null;
  /** Every generation the API accepted for this client, with the end the client learned and how. */
  accepted: { id: string; status: GenerationStatus | null; via: Via | null }[];
  /** `ready` frames seen: the first connection plus one per reconnect. */
  readies: number;
  /** Terminal `generation.*` events received. */
  terminalEvents: number;
  retries: RetryNotice[];
  /** Calls whose error reached the caller after the retry policy: should stay empty. */
  errors: { op: string; code: string; message: string; at: number }[];
  /** [start epoch ms, duration ms, op] of every call as the caller saw it (retries included). */
  calls: [number, number, string][];
}

export interface FleetReport {
  type: 'report';
  clients: ClientReport[];
}

const TERMINAL: ReadonlySet<string> = new Set(['succeeded', 'failed', 'canceled']);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Job {
  id: string;
  status: GenerationStatus | null;
  via: Via | null;
}

function driveClient(start: FleetStart, user: { email: string; password: string }) {
  const client: CloudClient = createCloudClient({
    config: { apiUrl: start.apiUrl, cognito: { ...start.cognito, region: 'local' } },
    secretStore: new InMemorySecretStore(),
    backoffMs: 100,
    maxBackoffMs: 2_000,
  });
  const report: ClientReport = {
    email: user.email,
    userId: null,
    accepted: [],
    readies: 0,
    terminalEvents: 0,
    retries: [],
    errors: [],
    calls: [],
  };
  const jobs = new Map<string, Job>();
  /** Terminal events that arrived before the POST's answer named the job. */
  const early = new Map<string, GenerationStatus>();
  let stopping = false;
  let readyResolve: () => void;
  const firstReady = new Promise<void>((r) => (readyResolve = r));

  const learn = (id: string, status: GenerationStatus, via: Via) => {
    const job = jobs.get(id);
    if (!job) {
      if (via === 'event') early.set(id, status);
      return;
    }
    if (job.status && TERMINAL.has(job.status)) return;
    job.status = status;
    if (TERMINAL.has(status)) job.via = via;
  };

  async function call<T>(op: string, fn: () => Promise<T>): Promise<T | undefined> {
    const t0 = Date.now();
    try {
      return await fn();
    } catch (e) {
      const code = e instanceof AppError ? e.code : 'THROWN';
      report.errors.push({ op, code, message: (e as Error).message, at: Date.now() });
      return undefined;
    } finally {
      report.calls.push([t0, Date.now() - t0, op]);
    }
  }

  async function reread(): Promise<void> {
    for (const job of jobs.values()) {
      if (job.status && TERMINAL.has(job.status)) continue;
      const g = await call('getGeneration', () => client.api.getGeneration(job.id));
      if (g) learn(g.id, g.status, 'reread');
    }
  }

  client.events.on('retry', (r) => report.retries.push(r));
  client.events.on('event', (e: CloudEvent) => {
    if (e.type === 'ready') {
      report.readies++;
      report.userId = e.userId;
      readyResolve();
      // The socket was down for a while: what ended meanwhile is only in the database.
      void reread();
      return;
    }
    if (e.type === 'generation.succeeded' || e.type === 'generation.failed' || e.type === 'generation.canceled') {
      report.terminalEvents++;
      learn(e.generationId, e.type.slice('generation.'.length) as GenerationStatus, 'event');
    }
  });

  const inFlight = () => [...jobs.values()].filter((j) => !j.status || !TERMINAL.has(j.status)).length;

  let submitted = 0;
  async function submitter(): Promise<void> {
    while (!stopping && jobs.size < start.maxJobs) {
      if (inFlight() >= start.inFlight) {
        await sleep(50);
        continue;
      }
      const key = randomUUID();
      submitted++;
      const fail = start.failEvery > 0 && submitted % start.failEvery === 0;
      const body = { ...start.request, ...(fail ? { model: start.failModel } : {}) };
      const g = await call('createGeneration', () =>
        client.api.createGeneration(body as Parameters<CloudClient['api']['createGeneration']>[0], key),
      );
      if (g) {
        jobs.set(g.id, { id: g.id, status: null, via: null });
        learn(g.id, g.status, 'response');
        const seen = early.get(g.id);
        if (seen) learn(g.id, seen, 'event');
      } else await sleep(500); // the error is recorded; do not hammer
      await sleep(start.submitGapMs);
    }
  }

  async function reader(): Promise<void> {
    while (!stopping) {
      const page = await call('listImages', () => client.api.listImages({ limit: 10 }));
      const first = page?.items[0];
      if (first) await call('getImage', () => client.api.getImage(first.id));
      await call('me', () => client.api.me());
      await sleep(start.readEveryMs);
    }
  }

  let loops: Promise<unknown> = Promise.resolve();
  return {
    async begin(): Promise<void> {
      await client.signIn(user.email, user.password);
      await firstReady;
      loops = Promise.all([submitter(), reader()]);
    },
    async end(settleMs: number): Promise<ClientReport> {
      stopping = true;
      await loops;
      const deadline = Date.now() + settleMs;
      while (inFlight() > 0 && Date.now() < deadline) await sleep(100);
      client.close();
      report.accepted = [...jobs.values()].map((j) => ({
        id: j.id,
        status: j.status && TERMINAL.has(j.status) ? j.status : null,
        via: j.via,
      }));
      return report;
    },
  };
}

let clients: ReturnType<typeof driveClient>[] = [];
process.on('message', (msg: FleetStart | FleetStop) => {
  if (msg.type === 'start') {
    clients = msg.users.map((u) => driveClient(msg, u));
    Promise.all(clients.map((c) => c.begin())).then(
      () => process.send!({ type: 'ready' }),
      (err: unknown) => {
        console.error('fleet: sign-in failed', err);
        process.exit(1);
      },
    );
  } else if (msg.type === 'stop') {
    Promise.all(clients.map((c) => c.end(msg.settleMs))).then((reports) => {
      const report: FleetReport = { type: 'report', clients: reports };
      process.send!(report, () => process.exit(0));
    });
  }
});
