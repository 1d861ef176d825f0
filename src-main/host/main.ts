// The browser host: the desktop services behind a loopback WebSocket bridge, serving the real
// renderer to a browser. For development (`npm start` where Electron cannot run) and e2e tests;
// never packaged. Prints "OPEN http://127.0.0.1:PORT/#token=…" once ready.
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { createEngineHost } from '@atelier/engine/host/host';
import { createModelStore } from '@atelier/engine/store/store';
import { createDesktopServices, layoutOf } from '../services/desktop-services.ts';
import { engineHostPort, modelStorePort } from '../services/engine-adapters.ts';
import { FileSecretStore } from '../services/secret-store.ts';
import { wsOriginOf } from '../services/csp.ts';
import { bridgeFileUrl, startBridge } from './bridge.ts';
import { HELP, REPO_ROOT, loadHostConfig } from './config.ts';
import { ensureRendererBuilt } from './renderer-build.ts';

const StackFile = z.object({
  apiUrl: z.string().url(),
  cognito: z.object({ endpoint: z.string().url(), region: z.string(), userPoolId: z.string(), clientId: z.string() }),
  s3: z.object({ endpoint: z.string().url() }).loose().optional(),
  /** The local stack's mailbox page, where sign-up and reset codes arrive (cloud/src/stack/mailbox.ts). */
  mailbox: z.object({ url: z.string().url() }).loose().optional(),
});

const log = (msg: string, err?: unknown) =>
  console.error(`[host] ${msg}${err ? `: ${(err as Error)?.stack ?? String(err)}` : ''}`);

let config;
try {
  config = loadHostConfig();
} catch (e) {
  // One line, so it is what a launcher shows as the reason (`--help` lists the options).
  console.error(`${(e as Error).message} (see --help)`);
  process.exit(2);
}
if (config.help) {
  console.log(HELP);
  process.exit(0);
}

const stack =
  config.stackFile && existsSync(config.stackFile)
    ? StackFile.parse(JSON.parse(readFileSync(config.stackFile, 'utf8')))
    : null;
if (!stack) log('no local cloud stack found: running local-only (start it with `npm run stack`)');

const rendererDir = config.build
  ? ensureRendererBuilt(REPO_ROOT, log)
  : existsSync(path.join(REPO_ROOT, 'src-renderer/dist/index.html'))
    ? path.join(REPO_ROOT, 'src-renderer/dist')
    : null;
if (!rendererDir) log('no renderer in this checkout: serving the bridge only');

const token = randomBytes(32).toString('base64url');
const layout = layoutOf({ userData: config.userData });
let origin = '';
// Leave a core for the UI and the bridge: inference saturates every thread it is given.
const threads = Math.max(1, Math.min(8, os.availableParallelism() - 1));
const store = createModelStore({ modelsDir: layout.models });
const services = await createDesktopServices({
  paths: { userData: config.userData },
  // Dev/test host only: the packaged app keeps secrets with safeStorage (src-main/electron).
  secretStore: new FileSecretStore(path.join(config.userData, 'secrets')),
  // No store here: the queue passes the model's folder (resolved through the cached model list), so the
  // engine host does not rescan the store on the event loop for every job.
  engine: engineHostPort(
    createEngineHost({ threads, memoryLimitBytes: config.memoryLimit ?? undefined }),
    () => threads,
    { memoryLimitBytes: config.memoryLimit ?? undefined },
  ),
  mailboxUrl: stack?.mailbox?.url ?? null,
  models: modelStorePort(store),
  cloud: stack ? { apiUrl: stack.apiUrl, cognito: stack.cognito } : null,
  shell: 'browser',
  version: (JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version,
  platform: process.platform,
  urlFor: bridgeFileUrl(() => origin, token),
  log,
});
const bridge = await startBridge({
  handlers: services.handlers,
  events: services.events,
  token,
  port: config.port,
  rendererDir,
  filesDir: layout.images,
  csp: stack ? { connect: [stack.apiUrl, wsOriginOf(stack.apiUrl)], img: stack.s3 ? [stack.s3.endpoint] : [] } : {},
  log,
});
origin = bridge.origin;
console.log(`OPEN ${bridge.pageUrl}`);
log(`profile ${config.userData}`);

let stopping = false;
async function stop(): Promise<void> {
  if (stopping) return;
  stopping = true;
  await bridge.close().catch((e) => log('closing the bridge', e));
  await services.close().catch((e) => log('closing the services', e));
  process.exit(0);
}
process.on('SIGINT', () => void stop());
process.on('SIGTERM', () => void stop());
