// `npm run bench:demo`: how long the demo model (native/models/atelier-demo-shapes) takes per
// image at its native 64×64 through the `atelier` CLI, against the sum of raw onnxruntime
// session.run calls of the same graphs with the same shapes, measured in the same run.
//
//  - CLI, one image: the wall time of `atelier generate` for one image, process start to exit
//    (Node start, model load, generation, PNG write): what a person waits for.
//  - CLI, per image in a batch of N: from the CLI's own progress lines ("image k/N … step s/S T s",
//    elapsed since generation began), (T at the last step of image N − T at the last step of
//    image 1) / (N − 1): the steady per-image cost, without process start and model load.
//  - raw session.run: text encoder once + UNet × steps (batch 2, guidance on) + VAE decoder once.
//
// Options: --steps <n> (default 25), --count <n> (default 8), --runs <n> (default 3), --json.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs, promisify } from 'node:util';
import type { InferenceSession } from 'onnxruntime-node';
import { openModelFolder } from '../native/src/model/model-folder.ts';
import { floatTensor, intTensor } from '../native/src/pipeline/tensors.ts';

const { values: flags } = parseArgs({
  options: {
    steps: { type: 'string', default: '25' },
    count: { type: 'string', default: '8' },
    runs: { type: 'string', default: '3' },
    json: { type: 'boolean', default: false },
  },
});
const steps = Number(flags.steps);
const count = Number(flags.count);
const runs = Number(flags.runs);
if (![steps, count, runs].every((n) => Number.isInteger(n) && n >= 1) || count < 2) {
  console.error('bench:demo: --steps, --runs must be whole numbers ≥ 1 and --count ≥ 2');
  process.exit(2);
}
const REPO = path.resolve(import.meta.dirname, '..');
const MODEL_DIR = path.join(REPO, 'native/models/atelier-demo-shapes');
const BIN = path.join(REPO, 'native/bin/atelier.ts');
const PROMPT = 'a red circle on a blue background';
const SIZE = 64;
const THREADS = 1;
const log = (s: string) => process.stderr.write(`${s}\n`);
// On a shared machine other work only adds time, so the best of N is each side's own cost.
const best = (xs: number[]) => Math.min(...xs);

const tmp = mkdtempSync(path.join(os.tmpdir(), 'atelier-bench-demo-'));
const env = {
  ...process.env,
  ATELIER_MODELS_DIR: path.join(tmp, 'models'),
  ATELIER_CACHE_DIR: path.join(tmp, 'cache'),
  ATELIER_FIXTURE_MODELS_DIR: '',
};

async function cli(n: number): Promise<{ wallMs: number; perImageMs: number }> {
  const t0 = performance.now();
  const { stderr } = await promisify(execFile)(
    process.execPath,
    [BIN, 'generate', PROMPT, '--seed', '7', '--steps', String(steps), '--count', String(n)].concat([
      '--threads',
      String(THREADS),
      '--out',
      path.join(tmp, 'out'),
    ]),
    { env, cwd: REPO },
  );
  const wallMs = performance.now() - t0;
  const lastStep = new Map<number, number>();
  for (const m of stderr.matchAll(/image (\d+)\/\d+ +\d+% step (\d+)\/(\d+) ([\d.]+)s/g))
    if (m[2] === m[3]) lastStep.set(Number(m[1]), Number(m[4]) * 1000);
  const first = lastStep.get(1);
  const last = lastStep.get(n);
  if (n > 1 && (first === undefined || last === undefined)) throw new Error(`unexpected CLI output: ${stderr}`);
  return { wallMs, perImageMs: n > 1 ? (last! - first!) / (n - 1) : NaN };
}

async function rawSessionRun(): Promise<number> {
  const m = await openModelFolder(MODEL_DIR, {
    executionProviders: ['cpu'],
    intraOpNumThreads: THREADS,
    interOpNumThreads: 1,
  });
  try {
    const batch = 2;
    const seq = m.tokenizer.maxLength;
    const ids = new Int32Array(batch * seq);
    ids.set(m.tokenizer.encode(''), 0);
    ids.set(m.tokenizer.encode(PROMPT), seq);
    const c = m.latentChannels;
    const l = SIZE / 8;
    const sample = new Float32Array(batch * c * l * l).map((_, i) => Math.sin(i));
    const latent = new Float32Array(c * l * l).map((_, i) => Math.cos(i));
    const times: number[] = [];
    for (let r = 0; r < runs + 1; r++) {
      let total = 0;
      const timed = async (s: InferenceSession, feeds: InferenceSession.FeedsType) => {
        const t0 = performance.now();
        const out = await s.run(feeds);
        total += performance.now() - t0;
        return out;
      };
      const te = await timed(m.textEncoder, { [m.io.inputIds.name]: intTensor(m.io.inputIds.type, ids, [batch, seq]) });
      const hidden = te[m.io.hiddenStates.name]!;
      for (let i = 0; i < steps; i++)
        await timed(m.unet, {
          [m.io.sample.name]: floatTensor(m.io.sample.type, sample, [batch, c, l, l]),
          [m.io.timestep.name]: intTensor(m.io.timestep.type, [999 - i * 40, 999 - i * 40], [batch]),
          [m.io.encoderHiddenStates.name]: hidden,
        });
      await timed(m.vaeDecoder, {
        [m.io.latentSample.name]: floatTensor(m.io.latentSample.type, latent, [1, c, l, l]),
      });
      if (r > 0) times.push(total); // the first run warms the sessions up
    }
    return best(times);
  } finally {
    await Promise.all([m.textEncoder.release(), m.unet.release(), m.vaeDecoder.release()]);
  }
}

try {
  const one: number[] = [];
  const many: number[] = [];
  const raw: number[] = [];
  for (let r = 0; r < runs; r++) {
    log(`run ${r + 1}/${runs}`);
    one.push((await cli(1)).wallMs);
    many.push((await cli(count)).perImageMs);
    raw.push(await rawSessionRun());
  }
  const rawMs = best(raw);
  const oneMs = best(one);
  const perImageMs = best(many);
  const result = {
    model: 'atelier-demo-shapes',
    size: `${SIZE}x${SIZE}`,
    steps,
    threads: THREADS,
    rawSessionRunMs: rawMs,
    cliOneImageWallMs: oneMs,
    cliPerImageInBatchMs: perImageMs,
    ratioOneImageWall: oneMs / rawMs,
    ratioPerImageInBatch: perImageMs / rawMs,
  };
  if (flags.json) console.log(JSON.stringify(result, null, 2));
  else {
    console.log(`demo model ${SIZE}×${SIZE}, ${steps} steps, guidance on (UNet batch 2), ${THREADS} thread`);
    console.log(`  raw session.run sum per image      ${rawMs.toFixed(1)} ms`);
    console.log(
      `  CLI per image in a batch of ${count}      ${perImageMs.toFixed(1)} ms  (${result.ratioPerImageInBatch.toFixed(2)}× raw)`,
    );
    console.log(
      `  CLI one image, process start→exit  ${oneMs.toFixed(0)} ms  (${result.ratioOneImageWall.toFixed(1)}× raw)`,
    );
  }
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
