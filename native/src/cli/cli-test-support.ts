/**
 * For the CLI's tests: a sandbox folder with the fixture models, the environment that points the
 * `atelier` command at it, and a runner that returns the exit code and output instead of throwing.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { FIXTURES, writeFixtureModel } from '../onnx-build/sd-fixture.ts';

const BIN = path.resolve(import.meta.dirname, '../../bin/atelier.ts');
const CLIP_DIR = path.resolve(import.meta.dirname, '../../fixtures/clip');

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** A fresh folder with the fixture models under `fixtures/`, and `base` pointed at it (no bundled models). */
export function cliSandbox(
  prefix: string,
  base: NodeJS.ProcessEnv,
  extraEnv: NodeJS.ProcessEnv = {},
): { root: string; env: NodeJS.ProcessEnv } {
  const root = mkdtempSync(path.join(os.tmpdir(), prefix));
  for (const spec of FIXTURES) writeFixtureModel(path.join(root, 'fixtures', spec.id), spec, CLIP_DIR);
  const env: NodeJS.ProcessEnv = {
    ...base,
    ATELIER_MODELS_DIR: path.join(root, 'models'),
    ATELIER_CACHE_DIR: path.join(root, 'cache'),
    ATELIER_FIXTURE_MODELS_DIR: path.join(root, 'fixtures'),
    ATELIER_BUNDLED_MODELS_DIR: '',
    ...extraEnv,
  };
  return { root, env };
}

/** Runs `atelier …args` with `env`; a non-zero exit is a result, not an exception. */
export async function runCli(args: string[], env: NodeJS.ProcessEnv): Promise<CliRun> {
  try {
    const r = await promisify(execFile)(process.execPath, [BIN, ...args], { env, timeout: 120_000 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const x = e as { code?: number; stdout: string; stderr: string };
    return { code: typeof x.code === 'number' ? x.code : -1, stdout: x.stdout, stderr: x.stderr };
  }
}
