// The browser e2e suite: the real renderer, driven in Debian's Chromium through the desktop's
// browser host, against the local cloud stack. Invoked by `npm test` (test/run.ts) as
//   node test/e2e/run.ts --report <json>
// and writes { passed, failed, skipped, steps } there; exits non-zero when any step failed.
// Screenshots of every screen go to test/artifacts/e2e/.
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { freePort, startChild, Steps, type Child } from './harness.ts';
import { cloudFlow, localFlow, type FlowContext } from './flows.ts';
import { webhooksFlow } from './flows-webhooks.ts';
import { keysFlow } from './flows-keys.ts';
import { usageFlow } from './flows-usage.ts';
import { img2imgFlow } from './flows-img2img.ts';
import { syncFlow } from './flows-sync.ts';
import { upgradeFlow } from './flows-upgrade.ts';
import { CHROMIUM_PATH, launchChromium } from './chromium.ts';

const repo = path.resolve(import.meta.dirname, '../..');
const args = process.argv.slice(2);
if (args.includes('--help')) {
  console.log(`Usage: node test/e2e/run.ts [--report <file>] [--keep] [--log]
Drives the real UI in Chromium (/usr/bin/chromium or $CHROMIUM) through src-main/host against the local stack.
  --report <file>  where to write { passed, failed, skipped, steps } (default test/artifacts/e2e.json)
  --keep           keep the temporary user-data folders
  --log            echo the stack's and host's output`);
  process.exit(0);
}
const opt = (flag: string) => {
  const i = args.indexOf(flag);
  return i >= 0 ? args[i + 1] : undefined;
};
const reportFile = path.resolve(opt('--report') ?? path.join(repo, 'test/artifacts/e2e.json'));
const keep = args.includes('--keep');
const log = args.includes('--log');
const artifacts = path.join(repo, 'test/artifacts/e2e');
const chromiumPath = CHROMIUM_PATH;
const hostScript = path.join(repo, 'src-main/host/main.ts');
const stackScript = path.join(repo, 'cloud/src/stack/main.ts');
const adminScript = path.join(repo, 'cloud/src/admin/main.ts');
const fixtureScript = path.join(repo, 'native/scripts/build-fixture-models.ts');

const children: Child[] = [];
const tempDirs: string[] = [];
let context: BrowserContext | null = null;
let page: Page | null = null;
rmSync(artifacts, { recursive: true, force: true }); // screenshots from this run only
const steps = new Steps(artifacts, () => page);

async function cleanup(): Promise<void> {
  await context?.close().catch(() => undefined);
  // Host first (it talks to the stack), then the stack.
  for (const c of [...children].reverse()) await c.stop();
  if (!keep) for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
}
for (const sig of ['SIGINT', 'SIGTERM'] as const)
  process.on(sig, () => {
    void cleanup().then(() => process.exit(130));
  });

const tmp = (prefix: string) => {
  const d = mkdtempSync(path.join(os.tmpdir(), prefix));
  tempDirs.push(d);
  return d;
};

console.log('e2e (Chromium)');
let flow: FlowContext | null = null;
let stackRunning = false;

await steps.run('prerequisites: Chromium, fixture models, the browser host', async () => {
  if (!existsSync(chromiumPath))
    throw new Error(
      `Chromium not found at ${chromiumPath}: install it with \`apt-get install -y chromium\` (.ci/run does).`,
    );
  if (!existsSync(hostScript))
    throw new Error('src-main/host/main.ts is missing: the browser host is needed to drive the UI.');
  // Every part is required: a missing one fails here instead of skipping the steps that need it.
  for (const [file, what] of [
    [fixtureScript, 'the fixture model builder'],
    [stackScript, 'the local cloud stack (npm run stack)'],
    [adminScript, 'the admin CLI'],
  ] as const)
    if (!existsSync(file))
      throw new Error(`${path.relative(repo, file)} is missing: ${what} is needed by the e2e suite.`);
  const r = spawnSync(process.execPath, [fixtureScript, '--if-missing'], {
    cwd: repo,
    stdio: log ? 'inherit' : 'pipe',
  });
  if (r.status !== 0) throw new Error(`building fixture models failed:\n${r.stderr?.toString() ?? ''}`);
});

await steps.run('the local cloud stack starts (npm run stack)', async () => {
  // Every port free and the database fresh, so a developer's own stack keeps running untouched.
  // (The stack still writes .atelier/stack.json, which the host is pointed at explicitly.)
  const pgParent = tmp('atelier-e2e-pg-');
  chmodSync(pgParent, 0o755); // embedded Postgres runs as user postgres when we are root
  const { child } = await startChild('stack', stackScript, [], {
    cwd: repo,
    env: {
      ATELIER_API_PORT: String(await freePort()),
      ATELIER_PG_PORT: String(await freePort()),
      ATELIER_PG_DATA: path.join(pgParent, 'pg'),
      COGNITO_PORT: String(await freePort()),
      S3_PORT: String(await freePort()),
      ATELIER_MAILBOX_PORT: String(await freePort()),
      LOG_LEVEL: 'warn',
    },
    ready: /^READY/,
    timeoutMs: 240_000,
    log,
  });
  children.push(child);
  stackRunning = true;
});

await steps.run('the browser host serves the UI', async () => {
  const userData = tmp('atelier-e2e-profile-');
  const hostArgs = [
    '--user-data',
    userData,
    ...(stackRunning ? ['--stack', path.join(repo, '.atelier/stack.json')] : ['--no-cloud']),
  ];
  const { child, match } = await startChild('host', hostScript, hostArgs, {
    cwd: repo,
    ready: /^(?:OPEN|READY)\s+(http:\/\/127\.0\.0\.1:\d+\/\S*)/,
    timeoutMs: 180_000,
    log,
  });
  children.push(child);
  const url = match[1]!;
  context = await launchChromium(tmp('atelier-e2e-chromium-'), { colorScheme: 'light' });
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: new URL(url).origin });
  page = context.pages()[0] ?? (await context.newPage());
  await page.setViewportSize({ width: 1280, height: 800 });
  page.setDefaultTimeout(30_000);
  const consoleErrors: string[] = [];
  page.on('pageerror', (e) => consoleErrors.push(String(e)));
  flow = {
    page,
    repo,
    artifacts,
    url,
    consoleErrors,
    fixtureModelsDir: path.join(repo, 'native/fixtures/models'),
    admin: (...a: string[]) => {
      const r = spawnSync(process.execPath, [adminScript, ...a], { cwd: repo, encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`admin ${a.join(' ')} failed (${r.status}):\n${r.stdout}\n${r.stderr}`);
      return r.stdout;
    },
    stackOutput: () => children.find((c) => c.name === 'stack')?.tail ?? [],
    stopStack: async () => {
      await children.find((c) => c.name === 'stack')?.stop();
    },
  };
});

const ctx = () => {
  if (!flow) throw new Error('the UI is not up');
  return flow;
};
await localFlow(steps, ctx);
if (stackRunning) await webhooksFlow(steps, ctx);
if (stackRunning) await keysFlow(steps, ctx);
if (stackRunning) await usageFlow(steps, ctx);
await img2imgFlow(steps, ctx);
if (stackRunning) await syncFlow(steps, ctx);
if (stackRunning) await upgradeFlow(steps, ctx);
if (stackRunning) await cloudFlow(steps, ctx);
else
  await steps.run('cloud flow: sign up → cloud generation → usage → quota', async () => {
    throw new Error('the local cloud stack did not start (see the step above), so the cloud flow cannot run');
  });

await cleanup();
steps.writeReport(reportFile);
console.log(`e2e: ${steps.passed} passed, ${steps.failed} failed; screenshots in ${path.relative(repo, artifacts)}/`);
process.exit(steps.failed > 0 ? 1 : 0);
