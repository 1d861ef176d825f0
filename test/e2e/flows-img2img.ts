// Starting from a picture (issue 15), driven as a person does: a picture made earlier in the flow
// becomes the starting image from the viewer (Shift+I), a mask is painted on the canvas with the
// mouse, the run goes through the local engine, and the result's PIXELS are read back: outside the
// mask's feather identical to the starting image, inside changed. Reuse settings brings it all
// back; a dropped file starts a run too, and a file that is not a picture is refused with a
// message that loses nothing.
import path from 'node:path';
import type { Locator, Page } from 'playwright-core';
import { assert, hasText, hasValue, hidden, until, visible } from './expect.ts';
import type { Steps } from './harness.ts';
import { jobDone, nav, type FlowContext } from './flows.ts';

const DEMO_MODEL = 'atelier-demo-shapes';
const START_PROMPT = 'a red square on a blue background';
const START_SEED = '31337';
const INPAINT_PROMPT = 'a yellow circle on a green background';
const INPAINT_SEED = '2718';
/** The mask painted: a block in the right part of the 64×64 picture (picture pixels). */
const PAINT = { x0: 38, x1: 58, y0: 10, y1: 54 };

interface Pixels {
  width: number;
  height: number;
  data: number[];
}

/** A picture's RGBA as the page decodes it, read through a canvas at its own size. */
async function pixelsOf(page: Page, url: string): Promise<Pixels> {
  // A string, not a function: the e2e code is type-checked without the DOM library.
  return page.evaluate(`(async (src) => {
    const img = new Image();
    img.src = src;
    await img.decode();
    const canvas = document.createElement('canvas');
    canvas.width = img.naturalWidth;
    canvas.height = img.naturalHeight;
    const g = canvas.getContext('2d');
    g.drawImage(img, 0, 0);
    return { width: canvas.width, height: canvas.height, data: Array.from(g.getImageData(0, 0, canvas.width, canvas.height).data) };
  })(${JSON.stringify(url)})`) as Promise<Pixels>;
}

const srcOf = async (l: Locator): Promise<string> => {
  const src = await l.getAttribute('src');
  assert(src, `${String(l)} has no src`);
  return src;
};

/** Drops a file with these bytes on the Generate form, as the OS does when a file is dragged in. */
async function dropFile(page: Page, name: string, bytes: number[]): Promise<void> {
  await page.evaluate(`((name, bytes) => {
    const dt = new DataTransfer();
    dt.items.add(new File([new Uint8Array(bytes)], name, { type: name.endsWith('.png') ? 'image/png' : 'text/plain' }));
    const form = document.querySelector('form[aria-label="Generate"]');
    for (const type of ['dragenter', 'dragover', 'drop'])
      form.dispatchEvent(new DragEvent(type, { dataTransfer: dt, bubbles: true, cancelable: true }));
  })(${JSON.stringify(name)}, ${JSON.stringify(bytes)})`);
}

/**
 * Centres an element in the window: the starting-image panel sits at the end of the form, where
 * Generate's sticky footer would otherwise cover what Playwright counts as "in view".
 */
const reveal = (l: Locator) => l.first().evaluate('(el) => el.scrollIntoView({ block: "center" })');

/** Drags the mouse over the canvas from picture pixel `from` to `to` (the canvas is shown scaled). */
async function stroke(page: Page, canvas: Locator, from: [number, number], to: [number, number], size: number) {
  // The whole canvas in sight: a point below the fold (or under the footer) would miss it.
  await reveal(canvas);
  const box = (await canvas.boundingBox())!;
  const view = page.viewportSize()!;
  assert(
    box.y >= 0 && box.y + box.height <= view.height,
    `the mask canvas is not wholly in sight: ${JSON.stringify(box)}`,
  );
  const at = ([x, y]: [number, number]) =>
    [box.x + ((x + 0.5) / size) * box.width, box.y + ((y + 0.5) / size) * box.height] as const;
  await page.mouse.move(...at(from));
  await page.mouse.down();
  await page.mouse.move(...at(to), { steps: 12 });
  await page.mouse.up();
}

async function openInGallery(page: Page, prompt: string): Promise<Locator> {
  await nav(page, 'Gallery');
  const cell = page
    .getByRole('listbox', { name: 'Images' })
    .getByRole('option', { name: new RegExp(prompt) })
    .first();
  await visible(cell);
  await cell.dblclick();
  const viewer = page.getByRole('dialog', { name: 'Image viewer' });
  await visible(viewer);
  return viewer;
}

async function runLocally(page: Page, prompt: string, seed: string): Promise<void> {
  await page.getByLabel('Prompt', { exact: true }).fill(prompt);
  await page.getByLabel('Seed', { exact: true }).fill(seed);
  // Enough steps for the demo model to draw its shape (earlier steps of the flow left 2).
  await page.getByLabel('Steps', { exact: true }).fill('20');
  await page.getByRole('radio', { name: 'This computer' }).check();
  await page.getByRole('button', { name: 'Generate', exact: true }).click();
  await jobDone(page, prompt, 180_000);
}

/**
 * Reads the result the viewer shows, and the starting image and mask its thumbnails show, and
 * checks the inpainting promise: every pixel beyond the mask's feather is the starting image's,
 * the masked region changed. Returns the result's pixels.
 */
async function checkInpainted(page: Page, viewer: Locator, prompt: string): Promise<Pixels> {
  const thumbs = viewer.getByTestId('start-thumbs');
  await visible(thumbs.getByRole('img', { name: 'Starting image' }));
  const made = await pixelsOf(page, await srcOf(viewer.getByRole('img', { name: prompt })));
  const start = await pixelsOf(page, await srcOf(thumbs.getByRole('img', { name: 'Starting image' })));
  const mask = await pixelsOf(page, await srcOf(thumbs.getByRole('img', { name: 'Mask' })));
  assert(
    made.width === 64 && start.width === 64 && mask.width === 64,
    `sizes ${made.width}, ${start.width}, ${mask.width}`,
  );
  // The engine's feather (decision 0150): radius max(1, round(64 / 32)) = 2 around the mask.
  const feather = 2;
  const masked = (x: number, y: number) => mask.data[(y * 64 + x) * 4]! >= 128;
  const near = (x: number, y: number) => {
    for (let dy = -feather; dy <= feather; dy++)
      for (let dx = -feather; dx <= feather; dx++) {
        const xx = x + dx;
        const yy = y + dy;
        if (xx >= 0 && yy >= 0 && xx < 64 && yy < 64 && masked(xx, yy)) return true;
      }
    return false;
  };
  let outside = 0;
  let outsideDiffer = 0;
  let inside = 0;
  let insideDiff = 0;
  for (let y = 0; y < 64; y++)
    for (let x = 0; x < 64; x++) {
      const p = (y * 64 + x) * 4;
      const d = [0, 1, 2].reduce((s, c) => s + Math.abs(made.data[p + c]! - start.data[p + c]!), 0);
      if (masked(x, y)) {
        inside++;
        insideDiff += d;
      } else if (!near(x, y)) {
        outside++;
        if (d !== 0) outsideDiffer++;
      }
    }
  assert(inside > 300, `the painted mask covers only ${inside} pixels`);
  assert(outside > 1500, `only ${outside} pixels lie outside the mask's feather`);
  assert(outsideDiffer === 0, `${outsideDiffer} of ${outside} pixels outside the mask's feather changed`);
  assert(
    insideDiff / inside / 3 > 20,
    `inside the mask the picture barely changed (mean ${(insideDiff / inside / 3).toFixed(1)} per channel)`,
  );
  return made;
}

/** The local inpainting result, for the cloud run of the same request to be compared with. */
let local: Pixels | null = null;

export async function img2imgFlow(steps: Steps, ctx: () => FlowContext): Promise<void> {
  await steps.run(
    'start from a gallery picture, paint a mask with the mouse, inpaint locally: pixels kept outside, changed inside',
    async () => {
      const { page } = ctx();
      // A picture to start from, made earlier in this flow by the shipped demo model (64 × 64).
      await nav(page, 'Generate');
      await page.getByLabel('Model', { exact: true }).selectOption(DEMO_MODEL);
      await hasValue(page.getByLabel('Size', { exact: true }), 'native');
      await runLocally(page, START_PROMPT, START_SEED);

      // Viewer → Shift+I: Generate opens with it as the starting image, strength at its default.
      const viewer = await openInGallery(page, START_PROMPT);
      await visible(viewer.getByRole('button', { name: 'Use as starting image' }));
      await page.keyboard.press('Shift+I');
      await hidden(viewer);
      const panel = page.getByTestId('start-image');
      await visible(panel.getByRole('img', { name: 'The starting image' }));
      await hasText(page.getByTestId('strength-value'), '0.75');
      await hasText(page.getByTestId('generation-mode'), /Image to image/i);

      // Paint: two strokes make the block; a third, stray one is undone with Ctrl+Z.
      await reveal(panel.getByRole('button', { name: 'Paint a mask' }));
      await panel.getByRole('button', { name: 'Paint a mask' }).click();
      const canvas = page.getByRole('img', { name: 'Mask: paint the region to repaint' });
      await visible(canvas);
      await reveal(page.getByLabel('Brush size'));
      await page.getByLabel('Brush size').fill('10');
      for (let y = PAINT.y0 + 5; y <= PAINT.y1 - 5; y += 8)
        await stroke(page, canvas, [PAINT.x0 + 5, y], [PAINT.x1 - 5, y], 64);
      await hasText(page.getByTestId('generation-mode'), /Inpainting/i);
      const summary = page.getByTestId('mask-summary');
      const painted = await summary.innerText();
      await stroke(page, canvas, [4, 4], [20, 4], 64);
      await until(
        'the stray stroke to show',
        () => summary.innerText(),
        (t) => t !== painted,
      );
      await page.locator('body').click({ position: { x: 5, y: 5 } }); // focus off the range input
      await page.keyboard.press('Control+z');
      await until(
        'Ctrl+Z to undo the stray stroke',
        () => summary.innerText(),
        (t) => t === painted,
      );
      // Invert twice (X) is the same mask again.
      await page.keyboard.press('x');
      await until(
        'X to invert',
        () => summary.innerText(),
        (t) => t !== painted,
      );
      await page.keyboard.press('x');
      await until(
        'X again to invert back',
        () => summary.innerText(),
        (t) => t === painted,
      );

      await reveal(canvas);
      await page.screenshot({ path: path.join(ctx().artifacts, '20-mask-editor.png') });
      await runLocally(page, INPAINT_PROMPT, INPAINT_SEED);
      const card = page.getByRole('listitem', { name: `Done: ${INPAINT_PROMPT}` }).first();
      await hasText(card.getByTestId('start-thumbs'), /Inpainting · strength 0\.75/);
      await visible(card.getByRole('img', { name: 'Mask' }));

      const result = await openInGallery(page, INPAINT_PROMPT);
      local = await checkInpainted(page, result, INPAINT_PROMPT);

      // Reuse settings brings back the prompt, the picture, the mask and the strength.
      await result.getByRole('button', { name: 'Reuse settings' }).click();
      await hidden(result);
      await hasValue(page.getByLabel('Prompt', { exact: true }), INPAINT_PROMPT);
      await visible(panel.getByRole('img', { name: 'The starting image' }));
      await hasText(page.getByTestId('generation-mode'), /Inpainting/i);
      await hasText(page.getByTestId('strength-value'), '0.75');
    },
  );

  await steps.run(
    'a dropped picture becomes the starting image; a file that is not one is refused and nothing is lost',
    async () => {
      const { page } = ctx();
      await nav(page, 'Generate');
      const panel = page.getByTestId('start-image');
      await reveal(panel.getByRole('button', { name: 'Remove the starting image' }));
      await panel.getByRole('button', { name: 'Remove the starting image' }).click();
      await hasText(page.getByTestId('generation-mode'), /Text to image/i);
      await hidden(page.getByTestId('strength-value'));
      // A picture the gallery already has (its bytes fetched as the page sees them): the same picture, no copy.
      const viewer = await openInGallery(page, START_PROMPT);
      const src = await srcOf(viewer.getByRole('img', { name: START_PROMPT }));
      const bytes = (await page.evaluate(
        `(async (u) => Array.from(new Uint8Array(await (await fetch(u)).arrayBuffer())))(${JSON.stringify(src)})`,
      )) as number[];
      await page.keyboard.press('Escape');
      await hidden(viewer);
      await nav(page, 'Generate');
      await dropFile(page, 'red-square.png', bytes);
      await visible(panel.getByRole('img', { name: 'The starting image' }));
      await hasText(page.getByTestId('generation-mode'), /Image to image/i);
      await page.getByLabel('Prompt', { exact: true }).fill('kept while a bad drop is refused');
      await dropFile(page, 'notes.png', [...new TextEncoder().encode('just some text, not a picture')]);
      await hasText(panel.getByRole('alert'), /not a PNG or JPEG/);
      await visible(panel.getByRole('img', { name: 'The starting image' }));
      await hasValue(page.getByLabel('Prompt', { exact: true }), 'kept while a bad drop is refused');
      await reveal(panel.getByRole('button', { name: 'Dismiss' }));
      await panel.getByRole('button', { name: 'Dismiss' }).click();
      await reveal(panel.getByRole('button', { name: 'Remove the starting image' }));
      await panel.getByRole('button', { name: 'Remove the starting image' }).click();
      // The file picker takes the same path as a drop.
      await page
        .getByLabel('Choose a starting image file')
        .setInputFiles({ name: 'picked.png', mimeType: 'image/png', buffer: Buffer.from(bytes) });
      await visible(panel.getByRole('img', { name: 'The starting image' }));
      await reveal(panel.getByRole('button', { name: 'Remove the starting image' }));
      await panel.getByRole('button', { name: 'Remove the starting image' }).click();
      await page.getByLabel('Prompt', { exact: true }).fill('');
    },
  );
}

/**
 * The same inpainting request in Atelier Cloud (signed in, quota left): Reuse settings on the local
 * result brings back the prompt, seed, picture, mask and strength; the run goes to the cloud,
 * which receives the picture and mask as uploaded inputs. Its pixels must keep everything outside
 * the mask's feather and match the local result (one engine, one request).
 */
export async function img2imgCloudFlow(steps: Steps, ctx: () => FlowContext): Promise<void> {
  await steps.run(
    'the same inpainting in the cloud: picture and mask go up, the result matches the local one',
    async () => {
      const { page } = ctx();
      assert(local, 'the local inpainting step did not run');
      const viewer = await openInGallery(page, INPAINT_PROMPT);
      await viewer.getByRole('button', { name: 'Reuse settings' }).click();
      await hidden(viewer);
      await hasText(page.getByTestId('generation-mode'), /Inpainting/i);
      const cloud = page.getByRole('radio', { name: 'Atelier Cloud' });
      await reveal(cloud);
      await cloud.check();
      // Reuse settings named the demo model, which is also the cloud's default: the same model, the
      // same 64 × 64 size, the same request.
      await hasText(page.getByTestId('route-reason'), /Cloud/);
      await page.getByRole('button', { name: 'Generate', exact: true }).click();
      const done = page.getByRole('listitem', { name: `Done: ${INPAINT_PROMPT}` });
      await until(
        'the cloud inpainting to finish',
        async () => {
          const failed = page.getByRole('listitem', { name: `Failed: ${INPAINT_PROMPT}` }).first();
          if (await failed.isVisible()) throw new Error(`the cloud job failed: ${await failed.innerText()}`);
          return done
            .filter({ hasText: 'CLOUD' })
            .or(done.filter({ hasText: 'Cloud' }))
            .count();
        },
        (n) => n > 0,
        180_000,
      );
      await nav(page, 'Gallery');
      const cells = page
        .getByRole('listbox', { name: 'Images' })
        .getByRole('option', { name: new RegExp(INPAINT_PROMPT) });
      await until(
        'the cloud result in the gallery',
        () => cells.count(),
        (n) => n >= 2,
      );
      // Newest first: the cloud result.
      await cells.first().dblclick();
      const result = page.getByRole('dialog', { name: 'Image viewer' });
      await hasText(result, /Atelier Cloud/);
      const made = await checkInpainted(page, result, INPAINT_PROMPT);
      const differ = made.data.filter((v, i) => v !== local!.data[i]).length;
      assert(
        differ === 0,
        `the cloud result differs from the local one in ${differ} of ${made.data.length} channel values`,
      );
      await page.keyboard.press('Escape');
      await hidden(result);
    },
  );
}
