/**
 * `npm run bench:sync`: gallery sync (issue 13) against real S3 clients, measured in one run on
 * one local stack (`cloud/src/stack/main.ts` in its own process: embedded Postgres, cognito-local,
 * s3rver, the API, a worker):
 *   1. up:   N local images of about 1 MB (and their thumbnails) uploaded by the desktop sync
 *            engine (reserve → presigned PUTs → complete) vs `aws s3 sync` (Debian's awscli) and
 *            `rclone sync` moving the same files to the same s3rver;
 *   2. down: the same images pulled into a second profile of the same user (change feed →
 *            downloads → library rows) vs `aws s3 sync` / `rclone sync` bucket → folder;
 *   3. feed: change-feed pages per second through the API over a user with 100,000 images, vs the
 *            same SQL statements run straight on Postgres (the ceiling for the route).
 * Ratios are reference time ÷ engine time (the engine's throughput as a fraction of the tool's).
 * Options: --images N (500) --bytes N (1000000) --feed N (100000) --page N (200) --rounds N (3:
 *   each direction timed N times, engine and tools back to back; printed: the median of the
 *   rounds' ratios) --concurrency N (the engine's downloads; default its own) --upload-concurrency N (the engine's PUTs in flight;
 *   default its own) --rate-limit N (the API's per-user and per-IP requests a minute
 *   for this run; default 1,000,000 so the sync path is measured, not the limit) --keep --json
 *   --s3 own|stack (s3rver in its own process, the default, or in the stack's beside the API)
 *   --profile DIR (a V8 CPU profile of this process per engine run)
 *   --trace (per kind of cloud call: when the first started and the last ended, calls, time in flight)
 */
import { openSyncDevice, type SyncDevice } from '../test/system/sync-device.ts';
import { spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import inspector from 'node:inspector/promises';
import net from 'node:net';
import os, { tmpdir } from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import pg from 'pg';
import { encodePng } from '@atelier/engine';
import { signUpConfirmed } from '../cloud/src/stack/cognito.ts';
import { CLOCK_TICKS, descendants, exitedChildrenCpu, threadCpu, ticks } from './proc-cpu.ts';
import { LOCAL_S3_CREDENTIALS, LOCAL_S3_REGION } from '../cloud/src/storage/local-s3.ts';
import { createCloudClient } from '../src-main/services/cloud-client.ts';
import { InMemorySecretStore } from '../src-main/services/secret-store.ts';
import { cloudSyncPort } from '../src-main/services/sync/cloud-port.ts';
import type { SyncCloudPort } from '../src-main/services/sync/sync-engine.ts';
import { sampleMetadata } from '../src-main/services/testing/png-fixture.ts';

const argv = process.argv.slice(2);
const arg = (name: string, def: number) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? Number(argv[i + 1]) : def;
};
const IMAGES = arg('images', 500);
const BYTES = arg('bytes', 1_000_000);
const FEED = arg('feed', 100_000);
const PAGE = arg('page', 200);
const RATE_LIMIT = arg('rate-limit', 1_000_000);
const CONCURRENCY = argv.includes('--concurrency') ? arg('concurrency', 0) : undefined;
const CONCURRENCY_UP = argv.includes('--upload-concurrency') ? arg('upload-concurrency', 0) : undefined;
const JSON_OUT = argv.includes('--json');
const KEEP = argv.includes('--keep');
const TRACE = argv.includes('--trace');
const ROUNDS = Math.max(1, arg('rounds', 3));
const repo = path.resolve(import.meta.dirname, '..');

/**
 * --trace: where a pass's time goes, per kind of call to the cloud (first start, last end, calls,
 * summed time in flight), printed after the run: the profile of the engine's side of the wire.
 */
const traces = new Map<string, { first: number; last: number; calls: number; busy: number }>();
function traced(profileName: string, port: SyncCloudPort): SyncCloudPort {
  if (!TRACE) return port;
  const wrap =
    <A extends unknown[], R>(what: string, fn: (...args: A) => Promise<R>) =>
    async (...args: A): Promise<R> => {
      const t = performance.now();
      try {
        return await fn(...args);
      } finally {
        const key = `${profileName} ${what}`;
        const e = traces.get(key) ?? { first: t, last: 0, calls: 0, busy: 0 };
        const end = performance.now();
        traces.set(key, { first: e.first, last: Math.max(e.last, end), calls: e.calls + 1, busy: e.busy + end - t });
      }
    };
  return {
    ...port,
    createUploads: wrap('reserve', port.createUploads),
    completeUploads: wrap('complete', port.completeUploads),
    put: wrap('put', port.put),
    putFile: wrap('put', port.putFile),
    changes: wrap('changes', port.changes),
    download: wrap('download', port.download),
    downloadFile: wrap('download full', port.downloadFile),
    storage: wrap('storage', port.storage),
  };
}
const AWS = existsSync('/usr/bin/aws') ? '/usr/bin/aws' : 'aws';

const say = (s: string) => {
  if (!JSON_OUT) console.log(s);
};
const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
const seconds = async (fn: () => Promise<unknown>) => {
  const t0 = performance.now();
  await fn();
  return (performance.now() - t0) / 1000;
};
const mbps = (bytes: number, s: number) => `${(bytes / 1024 / 1024 / s).toFixed(1)} MB/s`;
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const load = () =>
  os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');

/** Runs a command to completion; throws with its output when it fails. */
function run(cmd: string, args: string[], env: Record<string, string> = {}): Promise<void> {
  // A CA bundle from the environment breaks rclone's S3 client (and the endpoint is plain HTTP).
  const { AWS_CA_BUNDLE: _ca, ...base } = process.env;
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { env: { ...base, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.once('error', reject);
    p.once('exit', (code) =>
      code === 0 ? resolve() : reject(new Error(`${cmd} ${args.join(' ')} → ${code}\n${err}`)),
    );
  });
}

const tmp = mkdtempSync(path.join(tmpdir(), 'atelier-bench-sync-'));
chmodSync(tmp, 0o755); // embedded Postgres runs as user postgres when we are root

// ── the stack, in its own process ─────────────────────────────────────────────────────────────
const stackDir = path.join(tmp, 'stack');
const stackEnv = {
  ATELIER_STACK_DIR: stackDir,
  ATELIER_API_PORT: String(await freePort()),
  ATELIER_PG_PORT: String(await freePort()),
  ATELIER_PG_DATA: path.join(tmp, 'pg'),
  COGNITO_PORT: String(await freePort()),
  S3_PORT: String(await freePort()),
  ATELIER_MAILBOX_PORT: String(await freePort()),
  LOG_LEVEL: 'warn',
  // The production per-user limit (300 requests a minute) would cap the engine at 150 images a
  // minute (reserve + complete per image) and measure the limit, not the sync path: raised here,
  // said in the output, and the engine rides out 429s with Retry-After (sync-engine withRetry).
  RATE_LIMIT_USER_PER_MINUTE: String(RATE_LIMIT),
  RATE_LIMIT_IP_PER_MINUTE: String(RATE_LIMIT),
};

/** Starts a node script and waits for its line starting with READY; returns the child and that line. */
async function startChild(script: string, env: Record<string, string>, what: string) {
  const child = spawn(process.execPath, [path.join(repo, script)], {
    cwd: repo,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const tail: string[] = [];
  const ready = await new Promise<string>((resolve, reject) => {
    const onLine = (l: string) => {
      tail.push(l);
      if (/^READY/.test(l)) resolve(l);
    };
    readline.createInterface({ input: child.stdout }).on('line', onLine);
    readline.createInterface({ input: child.stderr }).on('line', onLine);
    child.once('exit', (code) => reject(new Error(`${what} exited (${code}):\n${tail.slice(-40).join('\n')}`)));
  });
  const stop = () =>
    new Promise<void>((resolve) => {
      if (child.exitCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.kill('SIGINT');
    });
  return { child, ready, stop };
}

// s3rver in its own process by default (bench/s3-server.ts says why); `--s3 stack` keeps it in
// the stack's process, beside the API, as the runs before 0146 measured.
const s3Own = !(argv.includes('--s3') && argv[argv.indexOf('--s3') + 1] === 'stack');
const s3Server = s3Own
  ? await startChild(
      'bench/s3-server.ts',
      { S3_DIR: path.join(tmp, 's3'), S3_BUCKET: 'atelier-bench', S3_PORT: stackEnv.S3_PORT },
      's3rver',
    )
  : null;
if (s3Server)
  Object.assign(stackEnv, {
    S3_ENDPOINT: s3Server.ready.split(' ')[1]!,
    S3_BUCKET: 'atelier-bench',
    S3_REGION: LOCAL_S3_REGION,
    S3_FORCE_PATH_STYLE: 'true',
    S3_ACCESS_KEY_ID: LOCAL_S3_CREDENTIALS.accessKeyId,
    S3_SECRET_ACCESS_KEY: LOCAL_S3_CREDENTIALS.secretAccessKey,
  });
const loadAtStart = load();
say(
  `bench:sync — ${IMAGES} images of ~${(BYTES / 1e6).toFixed(1)} MB, feed of ${FEED} images, Node ${process.version}`,
);
say(`  API rate limits for this run: ${RATE_LIMIT} requests/minute per user and per IP (production: 300 and 600)`);
say(
  `  s3rver ${s3Own ? 'in a process of its own (--s3 stack: in the API process)' : 'in the stack process, beside the API'}`,
);
const stack = await startChild('cloud/src/stack/main.ts', stackEnv, 'the stack').catch(async (e: unknown) => {
  await s3Server?.stop();
  throw e;
});
const info = JSON.parse(readFileSync(path.join(stackDir, 'stack.json'), 'utf8')) as {
  apiUrl: string;
  databaseUrl: string;
  cognito: { endpoint: string; region: string; userPoolId: string; clientId: string };
  s3: { endpoint: string; bucket: string; region: string };
};

/**
 * Where each timed run's CPU went (seconds): this process (the sync engine), the stack (API,
 * Postgres, cognito-local), s3rver, and the reference tool (exited children). On 2 cores the
 * engine competes with the API and s3rver for the CPU the tools share with s3rver alone.
 */
type Cpu = { engine: number; stack: number; s3: number; tool: number };
const cpuRuns = new Map<string, Cpu[]>();
/** Per process of the stack, its ticks so far: a Postgres backend that exits takes its ticks with it. */
const stackTicks = () => new Map([stack.child.pid!, ...descendants(stack.child.pid!)].map((p) => [p, ticks([p])]));
const cpuNow = () => ({
  engine: (process.cpuUsage().user + process.cpuUsage().system) / 1e6,
  stack: stackTicks(),
  s3: s3Server ? ticks([s3Server.child.pid!]) / CLOCK_TICKS : 0,
  tool: exitedChildrenCpu(),
});
const cpuDelta = (a: ReturnType<typeof cpuNow>, b: ReturnType<typeof cpuNow>): Cpu => {
  let stackTicksUsed = 0;
  for (const [pid, t] of b.stack) stackTicksUsed += t - (a.stack.get(pid) ?? 0);
  return { engine: b.engine - a.engine, stack: stackTicksUsed / CLOCK_TICKS, s3: b.s3 - a.s3, tool: b.tool - a.tool };
};
/**
 * --profile DIR: a V8 CPU profile of this process during each engine run (`up engine.cpuprofile`,
 * `down engine.cpuprofile`), to open in Chrome's DevTools: where the engine's own CPU goes.
 */
const PROFILE_DIR = argv.includes('--profile') ? path.resolve(argv[argv.indexOf('--profile') + 1]!) : null;
async function profiled<T>(label: string, fn: () => Promise<T>): Promise<T> {
  if (!PROFILE_DIR || !label.endsWith('engine')) return fn();
  const session = new inspector.Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.start');
  try {
    return await fn();
  } finally {
    const { profile } = await session.post('Profiler.stop');
    mkdirSync(PROFILE_DIR, { recursive: true });
    writeFileSync(path.join(PROFILE_DIR, `${label.replace(' ', '-')}.cpuprofile`), JSON.stringify(profile));
    session.disconnect();
  }
}
/** `seconds`, and the CPU each process spent meanwhile, kept under `label`. */
const timed = async (label: string, fn: () => Promise<unknown>) => {
  const c0 = cpuNow();
  const t0 = threadCpu();
  const s = await profiled(label, () => seconds(fn));
  const c1 = cpuNow();
  if (TRACE && label.endsWith('engine'))
    console.error(
      `  threads of this process during ${label}: ${[...threadCpu()]
        .map(([name, cpu]) => [name, cpu - (t0.get(name) ?? 0)] as const)
        .filter(([, cpu]) => cpu >= 0.05)
        .map(([name, cpu]) => `${name} ${cpu.toFixed(2)} s`)
        .join(', ')}`,
    );
  const d = cpuDelta(c0, c1);
  // Only the engine's runs count this process: the tools' runs leave it idle but for waiting.
  cpuRuns.set(label, [...(cpuRuns.get(label) ?? []), d]);
  return s;
};
const cleanups: (() => Promise<unknown> | void)[] = [];
const stopStack = async () => {
  await stack.stop();
  await s3Server?.stop();
};

try {
  const password = `Bench-${randomBytes(6).toString('hex')}-1a`;
  const user = `bench-${randomUUID()}@example.test`;
  await signUpConfirmed(info.cognito.endpoint, info.cognito, user, password);

  type Profile = SyncDevice;
  const profile = async (name: string, email = user): Promise<Profile> => {
    const p = await openSyncDevice({
      apiUrl: info.apiUrl,
      cognito: info.cognito,
      user: { email, password },
      dir: path.join(tmp, name),
      wrap: (port) => traced(name, port),
      concurrency: CONCURRENCY || undefined,
      uploadConcurrency: CONCURRENCY_UP || undefined,
    });
    cleanups.push(() => p.close());
    return p;
  };

  // ── N local images of about BYTES each (noise, so PNG cannot shrink it) ─────────────────────
  const a = await profile('profile-a');
  const side = Math.round(Math.sqrt(BYTES / 3));
  const t0 = performance.now();
  for (let i = 0; i < IMAGES; i++)
    a.library.addImage({
      png: encodePng({ width: side, height: side, channels: 3, data: randomBytes(side * side * 3) }),
      origin: 'local',
      metadata: sampleMetadata(`bench image ${i}`, i),
    });
  const files = readdirSync(path.join(a.dir, 'images'));
  const totalBytes = (
    a.db.prepare('SELECT sum(size) AS n FROM images').get() as {
      n: number;
    }
  ).n;
  say(
    `  made ${IMAGES} images (${(totalBytes / 1024 / 1024).toFixed(0)} MB, ${files.length} files with thumbnails) in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
  );
  // The reference tools move exactly these files (images and thumbnails).
  const src = path.join(tmp, 'src');
  mkdirSync(src);
  for (const f of files) linkSync(path.join(a.dir, 'images', f), path.join(src, f));

  const awsEnv = {
    AWS_ACCESS_KEY_ID: LOCAL_S3_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: LOCAL_S3_CREDENTIALS.secretAccessKey,
    AWS_DEFAULT_REGION: info.s3.region,
    AWS_CONFIG_FILE: path.join(tmp, 'aws-config'),
    AWS_SHARED_CREDENTIALS_FILE: path.join(tmp, 'aws-credentials'),
  };
  const aws = (...args: string[]) =>
    run(AWS, ['--endpoint-url', info.s3.endpoint, 's3', ...args, '--only-show-errors'], awsEnv);
  const rcloneEnv = {
    RCLONE_CONFIG: path.join(tmp, 'rclone.conf'),
    RCLONE_CONFIG_BENCH_TYPE: 's3',
    RCLONE_CONFIG_BENCH_PROVIDER: 'Other',
    RCLONE_CONFIG_BENCH_ENDPOINT: info.s3.endpoint,
    RCLONE_CONFIG_BENCH_ACCESS_KEY_ID: LOCAL_S3_CREDENTIALS.accessKeyId,
    RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY: LOCAL_S3_CREDENTIALS.secretAccessKey,
    RCLONE_CONFIG_BENCH_REGION: info.s3.region,
    RCLONE_CONFIG_BENCH_FORCE_PATH_STYLE: 'true',
  };
  const rclone = (...args: string[]) => run('rclone', [...args, '--s3-no-check-bucket'], rcloneEnv);
  const bucket = info.s3.bucket;

  // ── rounds ───────────────────────────────────────────────────────────────────────────────────
  // Each direction runs ROUNDS times; a round times the engine and both tools back to back, in an
  // order that alternates between rounds (tools first, then engine first), and the figure is the
  // median of the rounds' ratios: on a shared 2-core machine one run's ratio moved by ±0.1.
  // Every round uploads to fresh places: a new account for the engine (a profile copied from the
  // pristine one; the cloud would otherwise answer "exists") and fresh prefixes for the tools.
  const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;
  const pristine = path.join(tmp, 'profile-a-pristine');
  mkdirSync(path.join(pristine, 'images'), { recursive: true });
  await a.db.backup(path.join(pristine, 'library.db'));
  for (const f of files) linkSync(path.join(a.dir, 'images', f), path.join(pristine, 'images', f));
  const uploader = async (round: number): Promise<Profile> => {
    if (round === 0) return a;
    const email = `bench-${round}-${randomUUID()}@example.test`;
    await signUpConfirmed(info.cognito.endpoint, info.cognito, email, password);
    const dir = path.join(tmp, `profile-a-${round}`);
    mkdirSync(path.join(dir, 'images'), { recursive: true });
    copyFileSync(path.join(pristine, 'library.db'), path.join(dir, 'library.db'));
    for (const f of files) linkSync(path.join(pristine, 'images', f), path.join(dir, 'images', f));
    return profile(`profile-a-${round}`, email);
  };
  type Runs = { aws: number[]; rclone: number[]; engine: number[] };
  const inOrder = async (round: number, steps: (() => Promise<void>)[]) => {
    for (const step of round % 2 === 0 ? steps : [...steps].reverse()) await step();
  };

  // ── up ───────────────────────────────────────────────────────────────────────────────────────
  const upRuns: Runs = { aws: [], rclone: [], engine: [] };
  const upStart = performance.now();
  for (let r = 0; r < ROUNDS; r++) {
    const p = await uploader(r);
    await inOrder(r, [
      async () => void upRuns.aws.push(await timed('up aws', () => aws('sync', src, `s3://${bucket}/bench-aws-${r}/`))),
      async () =>
        void upRuns.rclone.push(
          await timed('up rclone', () => rclone('sync', src, `bench:${bucket}/bench-rclone-${r}`)),
        ),
      async () => {
        upRuns.engine.push(await timed('up engine', () => p.engine.syncOnce()));
        const st = p.engine.status();
        if (st.state !== 'idle' || p.engine.pending() !== 0)
          throw new Error(`the engine did not upload everything: ${JSON.stringify(st)}`);
      },
    ]);
  }

  // ── down ─────────────────────────────────────────────────────────────────────────────────────
  // Whole images only: a row appears with its thumbnail and its PNG follows from the background
  // downloader (decision 0148); the tools are timed until every byte is on disk, so is the engine.
  const imagesIn = (p: Profile) =>
    (p.db.prepare('SELECT count(*) AS n FROM images WHERE full_pending = 0').get() as { n: number }).n;
  let downPasses = 0;
  const downRuns: Runs = { aws: [], rclone: [], engine: [] };
  let b!: Profile;
  for (let r = 0; r < ROUNDS; r++) {
    // A new second device of the first account each round.
    b = await profile(`profile-b-${r}`);
    const pb = b;
    await inOrder(r, [
      async () =>
        void downRuns.aws.push(
          await timed('down aws', () => aws('sync', `s3://${bucket}/bench-aws-${r}/`, path.join(tmp, `down-aws-${r}`))),
        ),
      async () =>
        void downRuns.rclone.push(
          await timed('down rclone', () =>
            rclone('sync', `bench:${bucket}/bench-rclone-${r}`, path.join(tmp, `down-rclone-${r}`)),
          ),
        ),
      // The feed holds back rows newer than the oldest open transaction (decision 0140), so one
      // pass may stop short while the cloud is busy; the app then runs another on
      // `gallery.changed`. The time is until the profile has every image in full.
      async () =>
        void downRuns.engine.push(
          await timed('down engine', async () => {
            for (let pass = 0; pass < 20 && imagesIn(pb) < IMAGES; pass++) {
              downPasses++;
              await pb.engine.syncOnce();
              await pb.engine.downloadsSettled();
            }
          }),
        ),
    ]);
    if (imagesIn(pb) !== IMAGES) break;
  }
  const summary = (runs: Runs) => ({
    aws: mean(runs.aws),
    rclone: mean(runs.rclone),
    engine: mean(runs.engine),
    runs,
    vsAws: median(runs.aws.map((t, i) => t / runs.engine[i]!)),
    vsRclone: median(runs.rclone.map((t, i) => t / runs.engine[i]!)),
  });
  const up = summary(upRuns);
  const down = summary(downRuns);
  const got = imagesIn(b);
  if (got !== IMAGES) {
    // Say which ones, with their feed positions, so a missing image can be traced.
    const dbg = new pg.Client({ connectionString: info.databaseUrl });
    await dbg.connect();
    const cloudRows = (
      await dbg.query<{ id: string; server_xid: string; server_seq: string; deleted_at: Date | null }>(
        `SELECT id, server_xid::text, server_seq::text, deleted_at FROM images i
          WHERE user_id = (SELECT user_id FROM images WHERE id = $1) ORDER BY i.server_xid, i.server_seq`,
        [(a.db.prepare('SELECT cloud_id FROM images LIMIT 1').get() as { cloud_id: string }).cloud_id],
      )
    ).rows;
    await dbg.end();
    const have = new Set(
      (b.db.prepare('SELECT cloud_id FROM images').all() as { cloud_id: string }[]).map((r) => r.cloud_id),
    );
    const missing = cloudRows.filter((r) => !have.has(r.id));
    throw new Error(
      `the second profile has ${got} images, not ${IMAGES}; the cloud has ${cloudRows.length}; missing (xid, seq): ${missing
        .slice(0, 20)
        .map((r) => `${r.server_xid}/${r.server_seq}${r.deleted_at ? ' deleted' : ''}`)
        .join(
          ', ',
        )}; cursor ${JSON.stringify(b.db.prepare("SELECT key, value FROM sync_state WHERE key LIKE 'cursor:%'").all())}`,
    );
  }
  for (let r = 0; r < ROUNDS; r++)
    for (const d of [`down-aws-${r}`, `down-rclone-${r}`])
      if (readdirSync(path.join(tmp, d)).length !== files.length) throw new Error(`${d} is missing files`);

  // ── feed at FEED images ──────────────────────────────────────────────────────────────────────
  const feedUser = `bench-feed-${randomUUID()}@example.test`;
  const { sub } = await signUpConfirmed(info.cognito.endpoint, info.cognito, feedUser, password);
  const c = createCloudClient({
    config: { apiUrl: info.apiUrl, cognito: { ...info.cognito, region: 'local' } },
    secretStore: new InMemorySecretStore(),
  });
  await c.signIn(feedUser, password);
  cleanups.push(() => c.close());
  const feedPort = cloudSyncPort(c);
  await feedPort.storage(); // first sight creates the user row
  const admin = new pg.Client({ connectionString: info.databaseUrl });
  await admin.connect();
  cleanups.push(() => admin.end());
  const meta = JSON.stringify(sampleMetadata('feed image'));
  const ts0 = performance.now();
  await admin.query(
    `INSERT INTO images (id, user_id, width, height, metadata, prompt, size, sha256, thumb_mime, thumb_size)
     SELECT 'img_' || lpad(upper(to_hex(g)), 22, '0'), $1, 512, 512, $2::jsonb, 'feed image', 1000000,
            lpad(to_hex(g), 64, '0'), 'image/png', 20000
       FROM generate_series(1, $3::int) AS g`,
    [sub, meta, FEED],
  );
  say(`  seeded ${FEED} feed rows in ${((performance.now() - ts0) / 1000).toFixed(1)} s`);
  let pagesApi = 0;
  const feedApi = await seconds(async () => {
    for (let cursor = ''; ;) {
      const page = await feedPort.changes(cursor, PAGE);
      pagesApi++;
      cursor = page.nextCursor;
      if (!page.hasMore) break;
    }
  });
  // The reference: the route's own statements (cloud/src/sync/changes.ts) straight on Postgres.
  let pagesSql = 0;
  const feedSql = await seconds(async () => {
    let xid = '0';
    let seq = '0';
    for (;;) {
      const horizon = (await admin.query<{ x: string }>('SELECT pg_snapshot_xmin(pg_current_snapshot())::text AS x'))
        .rows[0]!.x;
      const args = [sub, xid, seq, PAGE + 1, horizon];
      const rows = (
        await admin.query<{ server_xid: string; server_seq: string }>(
          `SELECT id, user_id, generation_id, batch_index, board_id, starred, width, height, metadata, size, sha256,
                  thumb_mime, server_seq::text, server_xid::text, created_at, updated_at, deleted_at, purged_at,
                  starred_version::text, board_version::text, deleted_version::text
             FROM images
            WHERE user_id = $1 AND (server_xid, server_seq) > ($2::text::xid8, $3::bigint)
              AND server_xid < $5::text::xid8
            ORDER BY images.server_xid, images.server_seq
            LIMIT $4`,
          args,
        )
      ).rows;
      await admin.query(
        `SELECT id, name, server_seq::text, server_xid::text, updated_at, deleted_at, name_version::text, deleted_version::text
           FROM boards
          WHERE user_id = $1 AND (server_xid, server_seq) > ($2::text::xid8, $3::bigint)
            AND server_xid < $5::text::xid8
          ORDER BY boards.server_xid, boards.server_seq
          LIMIT $4`,
        args,
      );
      pagesSql++;
      const last = rows[Math.min(rows.length, PAGE) - 1];
      if (rows.length <= PAGE || !last) break;
      xid = last.server_xid;
      seq = last.server_seq;
    }
  });
  if (pagesApi !== pagesSql) throw new Error(`the API walked ${pagesApi} pages, the SQL ${pagesSql}`);

  const bytesMoved = files.reduce((n, f) => n + readFileSync(path.join(src, f)).byteLength, 0);
  const result = {
    images: IMAGES,
    bytes: bytesMoved,
    load: { start: loadAtStart, end: load() },
    rounds: ROUNDS,
    up,
    down: { ...down, passes: downPasses },
    cpu: Object.fromEntries(cpuRuns),
    feed: {
      images: FEED,
      pageSize: PAGE,
      pages: pagesApi,
      apiPagesPerSecond: pagesApi / feedApi,
      sqlPagesPerSecond: pagesSql / feedSql,
      vsSql: feedSql / feedApi,
    },
  };
  if (TRACE)
    for (const [k, v] of traces)
      console.error(
        `  trace ${k}: ${v.calls} calls, from ${((v.first - upStart) / 1000).toFixed(2)} s to ${((v.last - upStart) / 1000).toFixed(2)} s after the upload pass began, ${(v.busy / 1000).toFixed(1)} s in flight summed`,
      );
  if (JSON_OUT) console.log(JSON.stringify(result, null, 2));
  else {
    const runs = (xs: number[]) => xs.map((x) => x.toFixed(1)).join(' + ');
    const line = (
      what: string,
      r: {
        aws: number;
        rclone: number;
        engine: number;
        vsAws: number;
        vsRclone: number;
        runs: { aws: number[]; rclone: number[]; engine: number[] };
      },
    ) =>
      `  ${what}: engine ${r.engine.toFixed(1)} s (${mbps(bytesMoved, r.engine)}; ${runs(r.runs.engine)}), aws s3 sync ${r.aws.toFixed(1)} s (${mbps(bytesMoved, r.aws)}; ${runs(r.runs.aws)}), rclone ${r.rclone.toFixed(1)} s (${mbps(bytesMoved, r.rclone)}; ${runs(r.runs.rclone)})\n` +
      `      engine throughput = ${r.vsAws.toFixed(2)}× aws s3 sync, ${r.vsRclone.toFixed(2)}× rclone (median of the ${ROUNDS} rounds' ratios)`;
    say(
      `  ${files.length} files, ${(bytesMoved / 1024 / 1024).toFixed(0)} MB each way; load average ${loadAtStart} at the start, ${result.load.end} at the end`,
    );
    say(
      `  in flight: engine ${CONCURRENCY_UP ?? 10} PUTs / ${CONCURRENCY ?? 8} downloads, aws s3 sync 10 (max_concurrent_requests), rclone 4 transfers + 8 checkers (defaults); ${ROUNDS} rounds, tools before the engine in even rounds and after it in odd ones`,
    );
    say(line('up  ', result.up));
    say(line('down', result.down));
    say(`      (the engine's ${ROUNDS} downloads took ${downPasses} pass${downPasses === 1 ? '' : 'es'})`);
    say('  CPU per run (s; mean of the rounds) — engine process + stack (API, Postgres, Cognito) + s3rver + tool:');
    for (const [label, list] of cpuRuns) {
      const m = (k: keyof Cpu) => mean(list.map((c) => c[k]));
      const own = label.endsWith('engine') ? m('engine') : m('tool');
      say(
        `    ${label.padEnd(12)} ${own.toFixed(1)} + ${m('stack').toFixed(1)} + ${m('s3').toFixed(1)} = ${(own + m('stack') + m('s3')).toFixed(1)}`,
      );
    }
    say(
      `  feed at ${FEED} images, ${PAGE} per page: ${result.feed.apiPagesPerSecond.toFixed(1)} pages/s through the API ` +
        `(${(result.feed.apiPagesPerSecond * PAGE).toFixed(0)} changes/s), ${result.feed.sqlPagesPerSecond.toFixed(1)} pages/s of the same SQL = ${result.feed.vsSql.toFixed(2)}× the SQL`,
    );
  }
} finally {
  for (const c of cleanups.reverse()) await Promise.resolve(c()).catch(() => undefined);
  await stopStack();
  if (!KEEP) rmSync(tmp, { recursive: true, force: true });
  else say(`  kept ${tmp}`);
}
