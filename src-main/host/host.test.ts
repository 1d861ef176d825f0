// The browser host end to end: main.ts as a child process on the real engine with the fixture
// models, driven over its WebSocket bridge like the renderer does.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { IpcEnvelope, LocalJob } from '@atelier/common';
import { REPO_ROOT } from './config.ts';

const FIXTURES = path.join(REPO_ROOT, 'native/fixtures/models');
let child: ChildProcess;
let pageUrl: URL;
let token: string;

beforeAll(async () => {
  const userData = mkdtempSync(path.join(os.tmpdir(), 'atelier-host-'));
  child = spawn(
    process.execPath,
    [path.join(import.meta.dirname, 'main.ts'), '--no-cloud', '--no-build', '--user-data', userData],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  const line = await new Promise<string>((resolve, reject) => {
    readline.createInterface({ input: child.stdout! }).on('line', (l) => l.startsWith('OPEN ') && resolve(l));
    child.once('exit', (code) => reject(new Error(`host exited ${code}`)));
  });
  pageUrl = new URL(line.slice(5));
  token = new URLSearchParams(pageUrl.hash.slice(1)).get('token')!;
});
afterAll(async () => {
  if (child && child.exitCode === null) {
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await exited;
  }
});

interface Client {
  ws: WebSocket;
  invoke(channel: string, input: unknown): Promise<IpcEnvelope>;
  events: { name: string; payload: unknown }[];
}
async function connect(opts: { hello?: string | null; origin?: string } = {}): Promise<Client> {
  const ws = new WebSocket(`ws://${pageUrl.host}/bridge`, { origin: opts.origin ?? pageUrl.origin });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  const pending = new Map<number, (e: IpcEnvelope) => void>();
  const events: { name: string; payload: unknown }[] = [];
  ws.on('message', (data) => {
    const msg = JSON.parse(data.toString()) as {
      type: string;
      id: number;
      envelope: IpcEnvelope;
      name: string;
      payload: unknown;
    };
    if (msg.type === 'result') pending.get(msg.id)?.(msg.envelope);
    else if (msg.type === 'event') events.push({ name: msg.name, payload: msg.payload });
  });
  if (opts.hello !== null) ws.send(JSON.stringify({ type: 'hello', token: opts.hello ?? token }));
  let id = 0;
  return {
    ws,
    events,
    invoke: (channel, input) =>
      new Promise((resolve) => {
        const n = ++id;
        pending.set(n, resolve);
        ws.send(JSON.stringify({ id: n, type: 'invoke', channel, input }));
      }),
  };
}
/** Resolves once an event matching `pred` has arrived (already or later); fails after `timeoutMs`. */
async function waitForEvent(
  c: Client,
  pred: (e: { name: string; payload: unknown }) => boolean,
  what: string,
  timeoutMs = 90_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!c.events.some(pred)) {
    if (Date.now() > deadline)
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}; got: ${c.events.map((e) => e.name).join(', ')}`,
      );
    await new Promise((res) => setTimeout(res, 50));
  }
}
function get(
  pathAndQuery: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; type: string; body: Buffer; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port: pageUrl.port, path: pathAndQuery, headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode!,
            type: String(res.headers['content-type']),
            body: Buffer.concat(chunks),
            headers: res.headers,
          }),
        );
      })
      .on('error', reject);
  });
}

describe('browser host', () => {
  it('listens on 127.0.0.1 only with a 32-byte token in the fragment', () => {
    expect(pageUrl.hostname).toBe('127.0.0.1');
    expect(Buffer.from(token, 'base64url')).toHaveLength(32);
  });

  it('refuses calls before hello, a wrong token, and foreign origins', async () => {
    const anon = await connect({ hello: null });
    const r = await anon.invoke('app:info', {});
    expect(!r.ok && r.error.code).toBe('IPC_FORBIDDEN_SENDER');
    anon.ws.close();

    const wrong = await connect({ hello: 'x'.repeat(43) });
    const code = await new Promise<number>((resolve) => wrong.ws.once('close', (c) => resolve(c)));
    expect(code).toBe(4401);

    await expect(connect({ origin: 'https://evil.example' })).rejects.toThrow(/401|403|Unexpected server response/);
  });

  it('answers the contract over the socket', async () => {
    const c = await connect();
    const info = await c.invoke('app:info', {});
    expect(info).toMatchObject({ ok: true, value: { shell: 'browser', apiUrl: null } });
    const unknown = await c.invoke('shell:exec', { cmd: 'id' });
    expect(!unknown.ok && unknown.error.code).toBe('IPC_UNKNOWN_CHANNEL');
    c.ws.close();
  });

  // The fixture models are built by `npm test` (test/run.ts) before Vitest. Without them this
  // fails with the command to run, rather than skipping and passing a suite that tested nothing.
  it('generates locally on the real engine with the fixture model, pushes events, and serves the file to token holders only', async () => {
    expect(
      existsSync(path.join(FIXTURES, 'atelier-fixture-turbo')),
      `fixture models missing in ${FIXTURES}: run \`npm run models:fixture\` (npm test does it first)`,
    ).toBe(true);
    const c = await connect();
    const models = await c.invoke('models:list', {});
    expect(models.ok).toBe(true);
    const ids = (models.ok ? (models.value as { items: { id: string }[] }).items : []).map((m) => m.id);
    expect(ids).toContain('atelier-fixture-turbo');
    const r = await c.invoke('jobs:submit', {
      prompt: 'a lighthouse at dusk',
      model: 'atelier-fixture-turbo',
      steps: 2,
      width: 64,
      height: 64,
      scheduler: 'lcm',
      guidance: 0,
      seed: 1234,
      target: 'local',
    });
    expect(r.ok).toBe(true);
    const jobId = r.ok ? (r.value as { jobs: LocalJob[] }).jobs[0]!.id : '';
    await waitForEvent(
      c,
      (e) =>
        e.name === 'jobs:changed' &&
        (e.payload as LocalJob).id === jobId &&
        ['succeeded', 'failed'].includes((e.payload as LocalJob).state),
      'the job to finish',
    );
    const final = c.events
      .map((e) => e.payload as LocalJob)
      .filter((j) => j.id === jobId)
      .at(-1)!;
    expect(final.error).toBeNull();
    expect(final.state).toBe('succeeded');
    // Progress is pushed before the job can finish; the library's change event is not ordered
    // against the job's final state, so wait for it rather than expect it to have arrived.
    expect(c.events.some((e) => e.name === 'jobs:progressed')).toBe(true);
    await waitForEvent(c, (e) => e.name === 'library:changed', 'library:changed after the image was saved');

    const img = await c.invoke('library:get', { id: final.imageIds[0] });
    const image = img.ok ? (img.value as { url: string; metadata: { seed: number; positive_prompt: string } }) : null;
    expect(image?.metadata).toMatchObject({ seed: 1234, positive_prompt: 'a lighthouse at dusk' });
    const url = new URL(image!.url);
    expect(url.origin).toBe(pageUrl.origin);
    const file = await get(url.pathname + url.search);
    expect(file.status).toBe(200);
    expect(file.type).toBe('image/png');
    expect(file.body.subarray(1, 4).toString()).toBe('PNG');
    expect((await get(url.pathname)).status).toBe(401);
    expect((await get(`${url.pathname}?token=${'a'.repeat(43)}`)).status).toBe(401);
    expect((await get(`/files/..%2flibrary.db?token=${token}`)).status).toBe(404);
    c.ws.close();
  });

  it('serves the renderer with a strict CSP, and refuses other Host headers', async () => {
    const page = await get('/');
    // --no-build serves src-renderer/dist as it is; a checkout that never built it has no page.
    if (existsSync(path.join(REPO_ROOT, 'src-renderer/dist/index.html'))) {
      expect(page.status).toBe(200);
      expect(page.type).toMatch(/text\/html/);
      const csp = String(page.headers['content-security-policy']);
      expect(csp).toContain("script-src 'self'");
      expect(csp).toContain(`connect-src 'self' ws://127.0.0.1:${pageUrl.port}`);
      expect(csp).not.toMatch(/unsafe-(inline|eval)/);
    } else expect(page.status).toBe(404);
    expect((await get('/', { host: 'evil.example' })).status).toBe(421);
    // Traversal is normalised away: at worst the app page comes back, never a file outside dist/.
    const traversal = await get('/../../etc/passwd');
    expect(traversal.body.toString()).not.toMatch(/root:/);
  });
});
