/**
 * Runs the local CLI (`native/bin/atelier.ts generate`) on the demo model with one engine thread —
 * the reference the cloud tests hold the worker's PNGs to, byte for byte. One place, so every test
 * that compares against the CLI passes it the same model, threads and flags.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';

const REPO = path.resolve(import.meta.dirname, '../../..');
/** The catalogue's default model: the trained demo model shipped in native/models. */
export const DEMO_MODEL_DIR = path.join(REPO, 'native/models/atelier-demo-shapes');

export interface CliGenerate {
  prompt: string;
  negativePrompt?: string;
  /** Starting image file (image to image); the PNG's metadata records its base name. */
  init?: string;
  mask?: string;
  strength?: number;
  seed: number;
  steps: number;
  guidance: number;
  scheduler: string;
  width: number;
  height: number;
}

/** Generates with the CLI into `out` and returns the file's bytes. */
export function cliGenerate(request: CliGenerate, out: string): Buffer {
  const opt = (flag: string, value: string | number | undefined) =>
    value === undefined ? [] : [flag, String(value)];
  const args = [
    path.join(REPO, 'native/bin/atelier.ts'),
    'generate',
    request.prompt,
    ...opt('--negative', request.negativePrompt),
    ...opt('--init', request.init),
    ...opt('--mask', request.mask),
    ...opt('--strength', request.strength),
    ...opt('--seed', request.seed),
    ...opt('--steps', request.steps),
    ...opt('--guidance', request.guidance),
    ...opt('--scheduler', request.scheduler),
    ...opt('--width', request.width),
    ...opt('--height', request.height),
    ...opt('--model', DEMO_MODEL_DIR),
    ...opt('--threads', 1),
    ...opt('--out', out),
  ];
  execFileSync(path.join(REPO, 'node_modules/.bin/node'), args, { cwd: REPO, stdio: 'pipe' });
  return readFileSync(out);
}
