// `npm run models:fixture`: builds the tiny SD-shaped fixture models into native/fixtures/models/.
import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { FIXTURES, fixtureStamp, writeFixtureModel } from '../src/onnx-build/sd-fixture.ts';

const args = process.argv.slice(2);
if (args.includes('--help') || args.includes('-h')) {
  console.log(`Usage: npm run models:fixture [-- --if-missing] [-- --out <dir>]
Builds the fixture models (${FIXTURES.map((f) => f.id).join(', ')}) with deterministic weights in the
Hugging Face Optimum ONNX Stable Diffusion layout.
  --if-missing   skip models that already exist and were built by the current builder
  --out <dir>    output folder (default native/fixtures/models)`);
  process.exit(0);
}
const unknown = args.filter((a, i) => !['--if-missing', '--out'].includes(a) && args[i - 1] !== '--out');
if (unknown.length > 0) {
  console.error(`models:fixture: unknown argument ${unknown[0]} (see --help)`);
  process.exit(2);
}
const native = path.resolve(import.meta.dirname, '..');
const outIdx = args.indexOf('--out');
const outDir = outIdx >= 0 && args[outIdx + 1] ? path.resolve(args[outIdx + 1]!) : path.join(native, 'fixtures/models');
const clipDir = path.join(native, 'fixtures/clip');
const ifMissing = args.includes('--if-missing');

for (const spec of FIXTURES) {
  const dir = path.join(outDir, spec.id);
  const stampFile = path.join(dir, '.fixture-stamp');
  const stamp = fixtureStamp(spec, clipDir);
  if (ifMissing && existsSync(stampFile) && readFileSync(stampFile, 'utf8') === stamp) {
    console.log(`${spec.id}: up to date (${dir})`);
    continue;
  }
  const started = Date.now();
  // Build beside the target and swap it in with renames, so a concurrent build (parallel test
  // runs share this folder) or a reader never sees a half-written model.
  const tmp = `${dir}.tmp-${process.pid}`;
  writeFixtureModel(tmp, spec, clipDir);
  writeFileSync(path.join(tmp, '.fixture-stamp'), stamp);
  const old = `${dir}.old-${process.pid}`;
  try {
    renameSync(dir, old);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e; // nothing there yet, or moved by a parallel build
  }
  try {
    renameSync(tmp, dir);
  } catch (e) {
    // Another build put an identical model in place first: keep it.
    if (!existsSync(stampFile) || readFileSync(stampFile, 'utf8') !== stamp) throw e;
  }
  rmSync(tmp, { recursive: true, force: true });
  rmSync(old, { recursive: true, force: true });
  console.log(`${spec.id}: built in ${Date.now() - started} ms (${dir})`);
}
