import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import {
  AppError,
  DEFAULT_STRENGTH,
  GenerateRequest,
  issuesOf,
  MAX_SEED,
  SCHEDULERS,
  type GenerateRequestInput,
} from '@atelier/common';
import { decodeInputImage, type InputRole, requestSide } from '../pipeline/input-image.ts';
import { createEngineHost } from '../host/host.ts';
import { EXIT, UsageError, type CliContext } from './errors.ts';
import { openStore } from './models.ts';
import { ProgressBar } from './output.ts';

const HELP = `Usage: atelier generate "<prompt>" --out <file.png | folder> [options]
       atelier generate "<prompt>" --init <image> [--strength <0–1>] [--mask <mask.png>] --out <path>

Options:
  --init <file>         start from this picture (PNG or JPEG): image to image
  --strength <x>        0–1, how much of the schedule runs from the picture (default ${DEFAULT_STRENGTH}):
                        low keeps the picture, 1 keeps only its rough layout
  --mask <file>         inpainting: repaint the white (or opaque) part of this picture's-size mask,
                        keep the rest of --init
  --negative <text>     negative prompt
  --model <id|folder>   installed model id or a model folder (default: the default model)
  --steps <n>           denoising steps, 1–150 (default 30)
  --guidance <x>        classifier-free guidance scale, 0–30 (default 7.5; ≤ 1 disables it)
  --scheduler <name>    ${SCHEDULERS.join(' | ')} (default euler_a)
  --seed <n>            0–4294967295 (default random; images of a batch use seed, seed+1, …)
  --width <px>          64–2048, multiple of 8 (default: --init's size, else the model's native size, else 512)
  --height <px>         64–2048, multiple of 8 (default: --init's size, else the model's native size, else 512)
  --count <n>           images to generate, 1–16 (default 1)
  --provider <name>     auto | cpu | cuda | dml | coreml (default auto: the best usable)
  --threads <n>         intra-op threads (default physical cores)
  --out <path>          a .png file (with --count > 1: name-1.png, name-2.png, …) or a folder
  -h, --help            show this help

Prints one line per image: its seed and where it was written.`;

const NUMERIC = ['steps', 'guidance', 'seed', 'width', 'height', 'count', 'strength'] as const;

export async function generateCommand(argv: string[], ctx: CliContext): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      negative: { type: 'string' },
      model: { type: 'string' },
      steps: { type: 'string' },
      guidance: { type: 'string' },
      scheduler: { type: 'string' },
      seed: { type: 'string' },
      width: { type: 'string' },
      height: { type: 'string' },
      count: { type: 'string' },
      provider: { type: 'string' },
      threads: { type: 'string' },
      out: { type: 'string', short: 'o' },
      init: { type: 'string' },
      mask: { type: 'string' },
      strength: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    ctx.io.stdout.write(`${HELP}\n`);
    return EXIT.ok;
  }
  const bad: string[] = [];
  if (positionals.length === 0)
    bad.push('prompt is missing: put it in quotes, e.g. atelier generate "a red fox" --out fox.png');
  else if (positionals.length > 1)
    bad.push(`only one prompt can be given: put it in quotes (got ${positionals.length} words)`);
  if (!values.out) bad.push('--out <file.png | folder> is required');
  const input: Record<string, unknown> = { prompt: positionals[0] ?? '' };
  if (values.negative !== undefined) input.negativePrompt = values.negative;
  if (values.scheduler !== undefined) input.scheduler = values.scheduler;
  if (values.init === undefined) {
    if (values.mask !== undefined)
      bad.push('--mask needs --init <starting image>: the mask says which part of it to repaint');
    if (values.strength !== undefined) bad.push('--strength needs --init <starting image>');
  } else {
    input.initImage = path.basename(values.init) || values.init;
    if (values.mask !== undefined) input.mask = path.basename(values.mask) || values.mask;
  }
  for (const k of NUMERIC) {
    const raw = values[k];
    if (raw === undefined || (k === 'strength' && values.init === undefined)) continue;
    const n = Number(raw);
    if (raw.trim() === '' || !Number.isFinite(n)) bad.push(`${k} must be a number (got "${raw}")`);
    // Past 2^53 a number is no longer exact, and the schema would call it "not a whole number".
    else if (k === 'seed' && (n < 0 || n > MAX_SEED))
      bad.push(`seed is out of range: use 0 to ${MAX_SEED}, or leave it out for a random one (got ${raw})`);
    else input[k] = n;
  }
  let threads: number | undefined;
  if (values.threads !== undefined) {
    threads = Number(values.threads);
    if (!Number.isInteger(threads) || threads < 1)
      bad.push(`threads must be a whole number ≥ 1 (got "${values.threads}")`);
  }
  const parsed = GenerateRequest.safeParse(input);
  if (!parsed.success)
    for (const i of issuesOf(parsed.error))
      if (!bad.some((b) => b.startsWith(`${i.field} `) || b.startsWith(`${i.field}:`)))
        bad.push(issueText(i.field, i.message));
  if (bad.length) throw new UsageError(`invalid arguments: ${bad.join('; ')}`);
  const req = parsed.data!;
  const out = path.resolve(values.out!);
  const targets = await outputTargets(out, req.count);

  // Read and check the pictures before any model loads: a wrong file fails in a moment.
  let inputs: { initImage: Uint8Array; mask?: Uint8Array } | undefined;
  if (values.init !== undefined) {
    const initImage = await readInput(values.init, 'initImage');
    const start = decodeInputImage(initImage, 'initImage', values.init);
    inputs = { initImage };
    if (values.mask !== undefined) {
      const mask = await readInput(values.mask, 'mask');
      const m = decodeInputImage(mask, 'mask', values.mask);
      if (m.width !== start.width || m.height !== start.height)
        throw new AppError(
          'INPUT_IMAGE_SIZE_MISMATCH',
          `mask ${values.mask} is ${m.width}×${m.height}, starting image ${values.init} is ${start.width}×${start.height}`,
          {
            userMessage: `The mask ${values.mask} is ${m.width}×${m.height} pixels but the starting image ${values.init} is ${start.width}×${start.height}. Save the mask at the image's size.`,
          },
        );
      inputs.mask = mask;
    }
    // Without --width/--height the picture's own size is made (down to a multiple of 8).
    if (input.width === undefined) input.width = requestSide(start.width);
    if (input.height === undefined) input.height = requestSide(start.height);
  }

  const store = openStore(ctx);
  const host = createEngineHost({
    store,
    provider: values.provider ?? 'auto',
    threads: threads ?? ctx.config.providerEnv.threads,
    cacheDir: ctx.config.cacheDir,
  });
  const bar = new ProgressBar(ctx.io.stderr);
  const started = performance.now();
  try {
    // The input as given, not the parsed request: a size left out must reach the host as absent,
    // so it picks the model's native size rather than the schema's default.
    const result = await host.generate(values.model, input as GenerateRequestInput, {
      signal: ctx.signal,
      inputs,
      onProgress: (e) =>
        e.decode
          ? bar.update(
              `image ${e.imageIndex + 1}/${req.count}`,
              e.decode.tile,
              e.decode.tiles,
              `decoding tile ${e.decode.tile}/${e.decode.tiles}`,
            )
          : bar.update(
              `image ${e.imageIndex + 1}/${req.count}`,
              e.step,
              e.total,
              `step ${e.step}/${e.total} ${(e.elapsedMs / 1000).toFixed(1)}s`,
            ),
    });
    bar.done();
    const used = await store.resolve(result.model.id).catch(() => null);
    if (used?.fixture)
      ctx.io.stderr.write(
        `note: ${used.id} is a test fixture with random weights: it draws noise. Real models: atelier models catalogue\n`,
      );
    await mkdir(path.dirname(targets(0, 0, result.model.id)), { recursive: true });
    for (const img of result.images) {
      const file = targets(img.index, img.seed, result.model.id);
      await writeFile(file, img.png);
      ctx.io.stdout.write(`seed ${img.seed}  ${file}\n`);
    }
    ctx.io.stderr.write(
      `${result.images.length} image${result.images.length === 1 ? '' : 's'} in ${((performance.now() - started) / 1000).toFixed(1)} s on ${result.model.provider} (${result.model.id})\n`,
    );
    return EXIT.ok;
  } finally {
    bar.done();
    await host.close();
  }
}

/** A picture given on the command line: missing, unreadable (a folder, no permission) or its bytes. */
async function readInput(file: string, role: InputRole): Promise<Uint8Array> {
  const what = role === 'initImage' ? 'starting image' : 'mask';
  try {
    return new Uint8Array(await readFile(file));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT')
      throw new AppError('INPUT_IMAGE_NOT_FOUND', `${what} ${file} does not exist`, {
        userMessage: `The ${what} ${file} does not exist. Check the path.`,
      });
    const reason =
      code === 'EISDIR' ? 'it is a folder' : code === 'EACCES' ? 'permission denied' : (code ?? 'read failed');
    throw new AppError('INPUT_IMAGE_UNREADABLE', `${what} ${file}: ${reason}`, {
      userMessage: `The ${what} ${file} could not be read (${reason}). Give the path of a PNG or JPEG file you can open.`,
    });
  }
}

/** Decides file names: a .png path is a file (numbered when several), anything else is a folder. */
async function outputTargets(
  out: string,
  count: number,
): Promise<(index: number, seed: number, model: string) => string> {
  const isDir = await stat(out).then(
    (s) => s.isDirectory(),
    () => false,
  );
  if (!isDir && /\.png$/i.test(out)) {
    if (count === 1) return () => out;
    const base = out.slice(0, -4);
    return (i) => `${base}-${i + 1}.png`;
  }
  if (!isDir) {
    const exists = await stat(out).then(
      () => true,
      () => false,
    );
    if (exists) throw new UsageError(`--out ${out} is a file; give a .png path or a folder`);
  }
  return (_i, seed, model) => path.join(out, `${model}-${seed}.png`);
}

/**
 * One schema issue as a person reads it: the field named once ("seed must be…", not "seed: seed
 * must be…"), and zod's generic wording ("Invalid input: expected number, received NaN") replaced.
 */
export function issueText(field: string, message: string): string {
  const name = field || 'request';
  if (/^Invalid input|^Expected|expected .*, received/i.test(message)) return `${name} has a value of the wrong kind`;
  return message.startsWith(`${name} `) ? message : `${name}: ${message}`;
}
