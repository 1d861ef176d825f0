// `npm test`: everything a change must pass, in the order that fails fastest.
// Prepares what the tests need (fixture models), then lint, typecheck, the Vitest projects and the
// browser e2e suite, and ends with one summary line: "test: N passed, N failed".
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';

const repo = path.resolve(import.meta.dirname, '..');
const bin = (name: string) => path.join(repo, 'node_modules/.bin', name);
const args = process.argv.slice(2);
if (args.includes('--help')) {
  console.log(`Usage: npm test [-- --only <step>] [-- <vitest filters>]
Runs, in order: fixture models (if missing), lint, typecheck, Vitest (all projects), browser e2e.
  --only lint|typecheck|unit|e2e   run one step
  --skip lint,typecheck            skip steps (comma-separated)
Any other arguments are passed to Vitest.`);
  process.exit(0);
}
const take = (flag: string): string | undefined => {
  const i = args.indexOf(flag);
  if (i < 0) return undefined;
  const v = args[i + 1];
  args.splice(i, 2);
  return v;
};
const only = take('--only');
const skip = new Set((take('--skip') ?? '').split(',').filter(Boolean));
const wanted = (step: string) => (only ? only === step : !skip.has(step));

function run(step: string, cmd: string, cmdArgs: string[]): number {
  const started = Date.now();
  console.log(`\n▶ ${step}: ${path.basename(cmd)} ${cmdArgs.join(' ')}`);
  const r = spawnSync(cmd, cmdArgs, { cwd: repo, stdio: 'inherit', env: process.env });
  const code = r.status ?? 1;
  console.log(`${code === 0 ? '✔' : '✘'} ${step} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
  return code;
}

let passed = 0;
let failed = 0;
let skipped = 0;
const fail = (why: string) => {
  console.log(`\ntest: ${passed} passed, ${failed || 1} failed`);
  console.error(`npm test failed at: ${why}`);
  process.exit(1);
};

// Every part below is required: a missing script or report is a failure, never a silently
// skipped step (a suite that ran nothing must not pass).
const required = (file: string, what: string) => {
  if (!existsSync(file)) fail(`${what} is missing (${path.relative(repo, file)})`);
  return file;
};
const fixtureScript = path.join(repo, 'native/scripts/build-fixture-models.ts');
if (wanted('unit') || wanted('e2e')) {
  required(fixtureScript, 'the fixture model builder');
  if (run('fixture models', process.execPath, [fixtureScript, '--if-missing']) !== 0)
    fail('building the fixture models');
}
if (wanted('lint') && run('lint', bin('eslint'), ['--max-warnings', '0', '.']) !== 0) fail('lint');
if (wanted('typecheck')) {
  if (run('typecheck', bin('tsc'), ['-p', 'tsconfig.json']) !== 0) fail('typecheck');
  required(path.join(repo, 'src-renderer/tsconfig.json'), 'the renderer');
  if (run('typecheck renderer', bin('tsc'), ['-p', 'src-renderer/tsconfig.json']) !== 0) fail('typecheck (renderer)');
}
if (wanted('unit')) {
  mkdirSync(path.join(repo, 'test/artifacts'), { recursive: true });
  const report = path.join(repo, 'test/artifacts/vitest.json');
  rmSync(report, { force: true }); // a report left by an earlier run must not count
  const code = run('unit + integration (vitest)', bin('vitest'), [
    'run',
    '--reporter=default',
    '--reporter=json',
    `--outputFile.json=${report}`,
    ...args,
  ]);
  if (code === 0) required(report, 'the Vitest report');
  if (existsSync(report)) {
    const r = JSON.parse(readFileSync(report, 'utf8')) as {
      numPassedTests: number;
      numFailedTests: number;
      numPendingTests: number;
      numTodoTests: number;
    };
    passed += r.numPassedTests;
    failed += r.numFailedTests;
    skipped += r.numPendingTests + r.numTodoTests;
  }
  if (code !== 0) fail('vitest');
  if (skipped > 0) fail(`${skipped} test(s) skipped or todo: a test that does not run proves nothing`);
}
const e2eRunner = path.join(repo, 'test/e2e/run.ts');
if (wanted('e2e')) {
  required(e2eRunner, 'the browser e2e runner');
  const report = path.join(repo, 'test/artifacts/e2e.json');
  rmSync(report, { force: true }); // a report left by an earlier run must not count
  const code = run('e2e (Chromium)', process.execPath, [e2eRunner, '--report', report]);
  if (code === 0) required(report, 'the e2e report');
  if (existsSync(report)) {
    const r = JSON.parse(readFileSync(report, 'utf8')) as { passed: number; failed: number; skipped?: number };
    passed += r.passed;
    failed += r.failed;
    if (r.skipped) fail(`e2e skipped ${r.skipped} step(s): every part of the suite must run`);
  }
  if (code !== 0) fail('e2e');
}
if (passed + failed === 0 && (wanted('unit') || wanted('e2e'))) fail('no test ran');
console.log(`\ntest: ${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(failed > 0 ? 1 : 0);
