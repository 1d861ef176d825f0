// `npm start`: the local cloud stack plus the desktop UI, on embedded defaults.
// Starts `cloud/src/stack` (Postgres, cognito-local, s3rver, API, worker) and waits for READY, then
// opens the desktop: Electron when its binary is installed or can be fetched now, otherwise the
// browser host, printing the URL to open. Ctrl-C stops everything.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { describeExit, electronUnavailable, formatLogLine, START_HELP } from './launcher-text.ts';
import { ensureRendererBuilt } from './renderer-build.ts';

const repo = path.resolve(import.meta.dirname, '../..');
if (process.argv.includes('--help') || process.argv.includes('-h')) {
  console.log(START_HELP);
  process.exit(0);
}
const children: ChildProcess[] = [];
let stopping = false;
function stopAll(code: number): void {
  if (stopping) return;
  stopping = true;
  for (const c of children) if (c.exitCode === null) c.kill('SIGINT');
  setTimeout(() => process.exit(code), 5000).unref();
  Promise.all(children.map((c) => (c.exitCode === null ? new Promise((r) => c.once('exit', r)) : null))).then(() =>
    process.exit(code),
  );
}
process.on('SIGINT', () => stopAll(0));
process.on('SIGTERM', () => stopAll(0));

function launch(name: string, cmd: string, args: string[], readyPattern: RegExp | null): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: repo, stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    // The last lines a child wrote to stderr: said again if it dies, so the reason is next to it.
    const stderrTail: string[] = [];
    readline.createInterface({ input: child.stdout! }).on('line', (line) => {
      console.log(`[${name}] ${formatLogLine(line)}`);
      if (readyPattern?.test(line)) resolve(line);
    });
    readline.createInterface({ input: child.stderr! }).on('line', (line) => {
      stderrTail.push(line);
      if (stderrTail.length > 20) stderrTail.shift();
      console.error(`[${name}] ${formatLogLine(line)}`);
    });
    if (!readyPattern) child.once('spawn', () => resolve(''));
    child.once('exit', (code, signal) => {
      const why = describeExit(name, code, signal, stderrTail);
      reject(new Error(why));
      if (!stopping) {
        console.error(`\n${why}\nStopping the other services.`);
        stopAll(code || 1);
      }
    });
  });
}

/** The Electron binary, installing it now if missing (needs internet; fails fast without). */
function electronBinary(): string | null {
  const dir = path.join(repo, 'node_modules/electron');
  const installed = () => {
    const pathFile = path.join(dir, 'path.txt');
    if (!existsSync(pathFile)) return null;
    const bin = path.join(dir, 'dist', readFileSync(pathFile, 'utf8').trim());
    return existsSync(bin) ? bin : null;
  };
  if (!existsSync(path.join(dir, 'install.js'))) return null;
  const found = installed();
  if (found) return found;
  console.log('Fetching the Electron binary…');
  const env = { ...process.env };
  delete env.ELECTRON_SKIP_BINARY_DOWNLOAD; // this is the download the install step skipped
  const r = spawnSync(process.execPath, [path.join(dir, 'install.js')], {
    cwd: repo,
    env,
    stdio: ['ignore', 'ignore', 'pipe'],
    timeout: 180_000,
  });
  if (r.status !== 0) {
    console.log(`Electron is not available here: ${electronUnavailable(r.stderr?.toString() ?? '')}.`);
    return null;
  }
  return installed();
}

const passThrough = (flag: string): string[] => {
  const i = process.argv.indexOf(flag);
  return i >= 0 && process.argv[i + 1] ? [flag, process.argv[i + 1]!] : [];
};
const stackScript = path.join(repo, 'cloud/src/stack/main.ts');
const hostScript = path.join(repo, 'src-main/host/main.ts');
try {
  if (!process.argv.includes('--no-stack') && existsSync(stackScript)) {
    await launch('stack', process.execPath, [stackScript], /^READY/);
  }
  const electron = process.argv.includes('--browser') ? null : electronBinary();
  if (electron) {
    ensureRendererBuilt(repo, (l) => console.log(`[desktop] ${l}`));
    await launch('electron', electron, [repo], null);
    console.log('Atelier is running in its window. Ctrl-C stops everything.');
  } else if (existsSync(hostScript)) {
    const args = [
      hostScript,
      ...passThrough('--user-data'),
      ...passThrough('--port'),
      ...passThrough('--memory-limit'),
      ...(process.argv.includes('--no-stack') ? ['--no-cloud'] : []),
    ];
    const line = await launch('desktop', process.execPath, args, /^(OPEN|READY)/);
    console.log(`\nOpen Atelier in your browser: ${line.replace(/^OPEN\s+/, '')}\nCtrl-C stops everything.`);
  }
  if (children.length === 0) {
    console.error('Nothing to start: neither cloud/src/stack nor src-main/host is present in this checkout.');
    process.exit(1);
  }
} catch (e) {
  // A child that died has said why already (see launch); anything else is said here.
  if (!stopping) console.error(`npm start failed: ${(e as Error).message}`);
  stopAll(1);
}
