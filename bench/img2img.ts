// `npm run bench:img2img`: what a starting image costs, as ratios against text to image measured
// in the same run on the same model (see docs/BENCHMARKS.md, Image to image).
//
//  1. UNet time of img2img at strength 0.5 / UNet time of text to image at the same steps
//     (expected ≈ 0.5: ⌊steps × 0.5⌋ of the steps run).
//  2. Whole-call time of the same pair, which adds the VAE encoder run and the input decode.
//  3. Inpainting (standard UNet, strength 1) / text to image: the same UNet steps plus the
//     per-step re-noise and blend and the final paste.
//
// Runs on the trained demo model (64×64, the size it draws at) and on the SD fixture with an 8×
// UNet at 256×256 (a UNet step of tens of ms, closer to a real one). Each figure is the median of
// --runs rounds (variants interleaved) after one warm-up. Options: --steps <n> (default 20), --runs <n> (default 5), --json.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { ResolvedGenerateRequest } from '@atelier/common';
import { FIXTURES, writeFixtureModel } from '../native/src/onnx-build/sd-fixture.ts';
import { type DiffusionModel, type GenerateInputs, loadModel } from '../native/src/pipeline/diffusion-model.ts';
import { encodePng } from '../native/src/png/png.ts';
import { onnxruntimeVersion } from '../native/src/providers/detect.ts';
import { sessionOptions } from '../native/src/providers/session.ts';
import { physicalCores } from '../native/src/providers/threads.ts';

const { values: flags } = parseArgs({
  options: {
    steps: { type: 'string', default: '20' },
    runs: { type: 'string', default: '5' },
    json: { type: 'boolean', default: false },
  },
});
const steps = Number(flags.steps);
const runs = Number(flags.runs);
if (!Number.isInteger(steps) || steps < 2 || !Number.isInteger(runs) || runs < 1) {
  console.error('bench:img2img: --steps must be a whole number ≥ 2 and --runs ≥ 1');
  process.exit(2);
}
const threads = physicalCores();
const log = (s: string) => process.stderr.write(`${s}\n`);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

interface Case {
  name: string;
  dir: string;
  size: number;
}

const root = mkdtempSync(path.join(os.tmpdir(), 'atelier-bench-img2img-'));
const spec = { ...FIXTURES.find((f) => f.id === 'atelier-fixture-sd')!, unetScale: 8 };
const heavyDir = path.join(root, 'sd-unet8');
writeFixtureModel(heavyDir, spec, path.resolve(import.meta.dirname, '../native/fixtures/clip'));
const cases: Case[] = [
  {
    name: 'demo model, 64×64',
    dir: path.resolve(import.meta.dirname, '../native/models/atelier-demo-shapes'),
    size: 64,
  },
  { name: 'SD fixture ×8 UNet, 256×256', dir: heavyDir, size: 256 },
];

interface Figures {
  unetMs: number;
  totalMs: number;
  /** CPU time of the process (all threads) over the call: less disturbed by other work on the machine. */
  cpuMs: number;
}

interface Row {
  case: string;
  steps: number;
  txt2imgUnetMs: number;
  img2imgUnetMs: number;
  unetRatio: number;
  totalRatio: number;
  cpuRatio: number;
  inpaintRatio: number;
}

/**
 * Medians of `runs` rounds, each round running every variant once in turn, so a change in the
 * machine's load during the run (it is shared) lands on all of them alike.
 */
async function measure(model: DiffusionModel, variants: { req: ResolvedGenerateRequest; inputs?: GenerateInputs }[]) {
  for (const v of variants) await model.generate(v.req, { inputs: v.inputs }); // warm-up
  const unet = variants.map(() => [] as number[]);
  const total = variants.map(() => [] as number[]);
  const cpu = variants.map(() => [] as number[]);
  for (let i = 0; i < runs; i++)
    for (const [k, v] of variants.entries()) {
      const c0 = process.cpuUsage();
      const r = await model.generate(v.req, { inputs: v.inputs });
      const c = process.cpuUsage(c0);
      cpu[k]!.push((c.user + c.system) / 1000);
      unet[k]!.push(r.timings.unetMs);
      total[k]!.push(r.timings.totalMs);
    }
  return variants.map((_, k) => ({ unetMs: median(unet[k]!), totalMs: median(total[k]!), cpuMs: median(cpu[k]!) }));
}

const rows: Row[] = [];
try {
  for (const c of cases) {
    const model = await loadModel({
      modelDir: c.dir,
      sessionOptions: sessionOptions({ provider: 'cpu', threads }),
    });
    try {
      const base: ResolvedGenerateRequest = {
        prompt: 'a red circle on a blue background',
        negativePrompt: '',
        width: c.size,
        height: c.size,
        steps,
        guidance: 7.5,
        scheduler: 'ddim',
        seed: 4242,
        model: model.id,
        count: 1,
        target: 'local',
      };
      const start = (await model.generate(base)).images[0]!.png;
      const mask = new Uint8Array(c.size * c.size * 3);
      for (let y = c.size / 4; y < (3 * c.size) / 4; y++)
        mask.fill(255, (y * c.size + c.size / 4) * 3, (y * c.size + (3 * c.size) / 4) * 3);
      const maskPng = encodePng({ width: c.size, height: c.size, channels: 3, data: mask });
      const [t, i, p] = (await measure(model, [
        { req: base },
        { req: { ...base, initImage: 'start', strength: 0.5 }, inputs: { initImage: start } },
        {
          req: { ...base, initImage: 'start', mask: 'mask', strength: 1 },
          inputs: { initImage: start, mask: maskPng },
        },
      ])) as [Figures, Figures, Figures];
      const row: Row = {
        case: c.name,
        steps,
        txt2imgUnetMs: t.unetMs,
        img2imgUnetMs: i.unetMs,
        unetRatio: i.unetMs / t.unetMs,
        totalRatio: i.totalMs / t.totalMs,
        cpuRatio: i.cpuMs / t.cpuMs,
        inpaintRatio: p.totalMs / t.totalMs,
      };
      rows.push(row);
      log(
        `${c.name}, ${steps} DDIM steps: UNet img2img@0.5 / txt2img = ${row.unetRatio.toFixed(3)} (${i.unetMs.toFixed(1)} / ${t.unetMs.toFixed(1)} ms); whole call ${row.totalRatio.toFixed(3)}; CPU time ${row.cpuRatio.toFixed(3)}; inpaint@1 / txt2img whole call ${row.inpaintRatio.toFixed(3)}`,
      );
    } finally {
      await model.dispose();
    }
  }
} finally {
  rmSync(root, { recursive: true, force: true });
}

const env = { onnxruntime: onnxruntimeVersion(), node: process.version, threads, runs };
if (flags.json) console.log(JSON.stringify({ env, rows }, null, 2));
else {
  console.log(`onnxruntime-node ${env.onnxruntime}, ${env.node}, ${threads} intra-op threads, median of ${runs}`);
  console.log(
    '| model | steps | UNet img2img@0.5 / txt2img | whole call | CPU time, whole call | inpaint@1 / txt2img (whole call) |',
  );
  console.log('| --- | --- | --- | --- | --- | --- |');
  for (const r of rows)
    console.log(
      `| ${r.case} | ${r.steps} | ${r.unetRatio.toFixed(3)} (${r.img2imgUnetMs.toFixed(1)} / ${r.txt2imgUnetMs.toFixed(1)} ms) | ${r.totalRatio.toFixed(3)} | ${r.cpuRatio.toFixed(3)} | ${r.inpaintRatio.toFixed(3)} |`,
    );
}
