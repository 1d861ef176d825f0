/**
 * Image to image and inpainting on the trained demo model, read back with the pixel reader: at
 * low strength the start image's shape keeps its place and colour, at high strength the prompt
 * wins, and an inpainted region becomes what the prompt asks while everything outside the mask's
 * feather stays the start image's. Bars are counts over several seeds, so a retrained model that
 * draws as well passes whatever its exact pixels.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodePng, type DiffusionModel, encodePng, loadModel, type RawImage } from '../src/index.ts';
import { featherRadius } from '../src/pipeline/input-image.ts';
import { DEMO_MODEL_DIR, demoRequest } from './demo-cases.ts';
import { disagreements, PALETTE, readPicture, type Ask } from './pixel-stats.ts';

let model: DiffusionModel;
beforeAll(async () => {
  model = await loadModel({ modelDir: DEMO_MODEL_DIR, sessionOptions: { intraOpNumThreads: 1, interOpNumThreads: 1 } });
});
afterAll(async () => {
  await model?.dispose();
});

const SEEDS = [310_001, 310_777, 311_553, 312_329, 313_105, 313_881];

/** Start pictures the demo model drew itself, each the one its prompt asked for. */
const STARTS: { prompt: string; ask: Ask; other: string; repaint: string; repaintAsk: Ask }[] = [
  {
    prompt: 'a large red circle in the top left on a blue background',
    ask: { colour: 'red', background: 'blue', position: 'top left' },
    other: 'a large triangle',
    repaint: 'a large green circle in the top left on a blue background',
    repaintAsk: { colour: 'green' },
  },
  {
    prompt: 'a large yellow square in the bottom right on a black background',
    ask: { colour: 'yellow', background: 'black', position: 'bottom right' },
    other: 'a large circle',
    repaint: 'a large white square in the bottom right on a black background',
    repaintAsk: { colour: 'white' },
  },
];
/** What a high-strength prompt asks for instead: other colours everywhere. */
const HIGH: { prompt: string; ask: Ask }[] = [
  { prompt: 'a green square on a yellow background', ask: { colour: 'green', background: 'yellow' } },
  { prompt: 'a white triangle on a red background', ask: { colour: 'white', background: 'red' } },
];

async function startImage(prompt: string, ask: Ask): Promise<Uint8Array> {
  for (const seed of SEEDS) {
    const r = await model.generate(demoRequest({ prompt, seed, ask }, { scheduler: 'ddim', steps: 25 }));
    if (disagreements(readPicture(decodePng(r.images[0]!.png)), ask).length === 0) return r.images[0]!.png;
  }
  throw new Error(`the demo model drew no picture of "${prompt}" in ${SEEDS.length} seeds`);
}

describe('image to image on the demo model', () => {
  it('at strength 0.15 the start picture keeps its colours and place; at strength 1 the colours of the prompt win', async () => {
    let kept = 0;
    let won = 0;
    let runs = 0;
    const misses: string[] = [];
    for (const [si, s] of STARTS.entries()) {
      const start = await startImage(s.prompt, s.ask);
      for (const scheduler of ['ddim', 'euler_a', 'euler'] as const) {
        for (const seed of SEEDS.slice(0, 2)) {
          runs++;
          const run = async (prompt: string, strength: number) =>
            readPicture(
              decodePng(
                (
                  await model.generate(
                    demoRequest({ prompt, seed, ask: {} }, { scheduler, steps: 25, initImage: 'img_start', strength }),
                    { inputs: { initImage: start } },
                  )
                ).images[0]!.png,
              ),
            );
          // Low strength, a prompt that names another shape but no colour or place.
          const lowWrong = disagreements(await run(s.other, 0.15), s.ask);
          if (lowWrong.length === 0) kept++;
          else misses.push(`${scheduler} ${seed} 0.15 "${s.other}" from "${s.prompt}": ${lowWrong.join(', ')}`);
          const high = HIGH[si]!;
          const highWrong = disagreements(await run(high.prompt, 1), high.ask);
          if (highWrong.length === 0) won++;
          else misses.push(`${scheduler} ${seed} 1.0 "${high.prompt}": ${highWrong.join(', ')}`);
        }
      }
    }
    console.info(`img2img demo: start kept at 0.15 in ${kept}/${runs}, prompt won at 1.0 in ${won}/${runs}`);
    expect(kept, misses.join('\n')).toBeGreaterThanOrEqual(Math.ceil(runs * 0.75));
    expect(won, misses.join('\n')).toBeGreaterThanOrEqual(Math.ceil(runs * 0.75));
  }, 600_000);
});

describe('inpainting on the demo model', () => {
  it('repaints the masked shape in the colour the prompt asks and keeps every pixel outside the feather', async () => {
    let repainted = 0;
    let runs = 0;
    const notes: string[] = [];
    const r = featherRadius(64, 64);
    for (const s of STARTS) {
      const start = await startImage(s.prompt, s.ask);
      const startPx = decodePng(start);
      // The mask: the quarter of the picture the shape sits in (its bounding box, grown by 4 px).
      const reading = readPicture(startPx);
      const box = shapeBox(startPx, reading.background);
      const [x0, y0, x1, y1] = [box[0] - 4, box[1] - 4, box[2] + 4, box[3] + 4].map((v) =>
        Math.max(0, Math.min(64, v)),
      ) as [number, number, number, number];
      const mask: RawImage = { width: 64, height: 64, channels: 3, data: new Uint8Array(64 * 64 * 3) };
      for (let y = y0; y < y1; y++)
        for (let x = x0; x < x1; x++) mask.data.fill(255, (y * 64 + x) * 3, (y * 64 + x) * 3 + 3);
      for (const scheduler of ['ddim', 'euler_a', 'euler'] as const)
        for (const seed of SEEDS.slice(0, 2)) {
          runs++;
          const req = demoRequest(
            { prompt: s.repaint, seed, ask: {} },
            { scheduler, steps: 25, initImage: 'img_start', mask: 'mask', strength: 1 },
          );
          const out = decodePng(
            (await model.generate(req, { inputs: { initImage: start, mask: encodePng(mask) } })).images[0]!.png,
          );
          let changedOutside = 0;
          for (let y = 0; y < 64; y++)
            for (let x = 0; x < 64; x++) {
              if (x >= x0 - r && x < x1 + r && y >= y0 - r && y < y1 + r) continue;
              const p = (y * 64 + x) * 3;
              if (
                out.data[p] !== startPx.data[p] ||
                out.data[p + 1] !== startPx.data[p + 1] ||
                out.data[p + 2] !== startPx.data[p + 2]
              )
                changedOutside++;
            }
          expect(changedOutside, `${scheduler} ${seed}: pixels changed outside the mask's feather`).toBe(0);
          const after = readPicture(out);
          const wrong = disagreements(after, s.repaintAsk);
          if (wrong.length === 0) repainted++;
          else notes.push(`${scheduler} ${seed} "${s.repaint}": ${wrong.join(', ')}`);
        }
    }
    console.info(`inpaint demo: the masked shape took the prompt's colour in ${repainted}/${runs}`);
    expect(repainted, notes.join('\n')).toBeGreaterThanOrEqual(Math.ceil(runs * 0.75));
  }, 600_000);
});

/** The bounding box [x0, y0, x1) × … of the pixels farther from the background colour than the rest. */
function shapeBox(img: RawImage, background: string): [number, number, number, number] {
  const ref = PALETTE[background as keyof typeof PALETTE];
  let [x0, y0, x1, y1] = [64, 64, 0, 0];
  for (let y = 0; y < img.height; y++)
    for (let x = 0; x < img.width; x++) {
      const p = (y * img.width + x) * img.channels;
      const d =
        Math.abs(img.data[p]! - ref[0]) + Math.abs(img.data[p + 1]! - ref[1]) + Math.abs(img.data[p + 2]! - ref[2]);
      if (d > 150) {
        x0 = Math.min(x0, x);
        y0 = Math.min(y0, y);
        x1 = Math.max(x1, x + 1);
        y1 = Math.max(y1, y + 1);
      }
    }
  return [x0, y0, x1, y1];
}
