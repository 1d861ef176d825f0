// `npm start`: the local cloud stack plus the desktop UI, on embedded defaults.
// Starts `cloud/src/stack` (Postgres, cognito-local, s3rver, API, worker) and waits for READY, then
// opens the desktop: Electron when its binary can be had, otherwise the browser host, printing the
// URL to open. Ctrl-C stops everything.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';

const repo = path.resolve(import.meta.dirname, '../..');
if (process.argv.includes('--help')) {
  console.log(`Usage: npm start [-- --no-stack] [-- --browser]
Starts the local Atelier Cloud stack and the desktop app.
  --no-stack   do not start the local cloud stack (local generation only)
  --browser    serve the UI to a browser even if Electron is available`);
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

function launch(name: string, script: string, args: string[], readyPattern: RegExp): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, ...args], { cwd: repo, stdio: ['ignore', 'pipe', 'inherit'] });
    children.push(child);
    const rl = readline.createInterface({ input: child.stdout! });
    rl.on('line', (line) => {
      console.log(`[${name}] ${line}`);
      if (readyPattern.test(line)) resolve(line);
    });
    child.once('exit', (code) => {
      reject(new Error(`${name} exited with code ${code}`));
      if (!stopping) stopAll(code ?? 1);
    });
  });
}

const stackScript = path.join(repo, 'cloud/src/stack/main.ts');
const hostScript = path.join(repo, 'src-main/host/main.ts');
try {
  if (!process.argv.includes('--no-stack') && existsSync(stackScript)) {
    await launch('stack', stackScript, [], /^READY/);
  }
  if (existsSync(hostScript)) {
    await launch('desktop', hostScript, process.argv.includes('--browser') ? ['--browser'] : [], /^(OPEN|READY)/);
  }
  if (children.length === 0) {
    console.error('Nothing to start: neither cloud/src/stack nor src-main/host is present in this checkout.');
    process.exit(1);
  }
} catch (e) {
  console.error(`npm start failed: ${(e as Error).message}`);
  stopAll(1);
}
