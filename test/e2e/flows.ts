// The user journeys, as a person would take them: by labels, roles and visible text.
import path from 'node:path';
import type { Locator, Page } from 'playwright-core';
import { assert, count, enabled, exactText, hasAttr, hasText, hasValue, hidden, until, visible } from './expect.ts';
import type { Steps } from './harness.ts';
import { readPicture } from '../../native/test/pixel-stats.ts';
import { img2imgCloudFlow } from './flows-img2img.ts';

export interface FlowContext {
  page: Page;
  repo: string;
  artifacts: string;
  url: string;
  fixtureModelsDir: string;
  consoleErrors: string[];
  admin(...args: string[]): string;
  /** What the local stack printed in its terminal so far (the fallback place a code is shown). */
  stackOutput(): string[];
  /** Stops the local cloud stack (the last cloud step: the app is then offline). */
  stopStack(): Promise<void>;
}

const LOCAL_PROMPT = 'a small red lighthouse on a cliff';
const CLOUD_PROMPT = 'a blue paper boat on a pond';
const SEED = '1234';
const FIXTURE_MODEL = 'atelier-fixture-turbo';
/** What a newcomer types first; the shipped demo model must draw it. The seed is fixed so the run repeats. */
const DEMO_PROMPT = 'a red circle on a blue background';
const DEMO_SEED = '424242';

/** The window sizes every step is looked at in: the default and the smallest supported. */
export const SIZES = [
  { width: 1280, height: 800 },
  { width: 800, height: 600 },
] as const;

/** Screenshots of what is in sight (not the full page) at both sizes; the flow goes on at 1280×800. */
export async function shot(c: FlowContext, name: string, focus?: Locator): Promise<void> {
  for (const size of SIZES) {
    await c.page.setViewportSize(size);
    if (focus) await focus.first().scrollIntoViewIfNeeded();
    await c.page.screenshot({ path: path.join(c.artifacts, `${name}-${size.width}x${size.height}.png`) });
  }
  await c.page.setViewportSize(SIZES[0]);
}

/** Fails unless the element is wholly inside the window (not below the fold, not scrolled away). */
async function inSight(page: Page, loc: Locator, what: string): Promise<void> {
  const size = page.viewportSize()!;
  const box = await until(
    `${what} to be laid out`,
    () => loc.first().boundingBox(),
    (b) => b !== null,
  );
  assert(
    box!.y >= 0 && box!.x >= 0 && box!.y + box!.height <= size.height + 0.5 && box!.x + box!.width <= size.width + 0.5,
    `${what} is out of sight at ${size.width}×${size.height}: ${JSON.stringify(box)}`,
  );
}

/** The newest code for `email` in some text (the mailbox page lists newest first). */
function codeIn(text: string, email: string, newest: 'first' | 'last'): string | null {
  const codes = text
    .split('\n')
    .filter((l) => l.toLowerCase().includes(email.toLowerCase()))
    .map((l) => /\b(\d{6})\b/.exec(l)?.[1])
    .filter((x): x is string => !!x);
  return (newest === 'first' ? codes[0] : codes.at(-1)) ?? null;
}

/**
 * The code "we sent", from where a person finds it on the local stack: the mailbox page the app
 * links to (opened by clicking that link), else the stack's terminal output.
 */
async function emailedCode(c: FlowContext, email: string, shotName: string): Promise<string> {
  const link = c.page.getByTestId('mailbox-link').getByRole('link', { name: 'local mailbox' });
  if (await link.isVisible()) {
    const [mailbox] = await Promise.all([c.page.context().waitForEvent('page'), link.click()]);
    try {
      await mailbox.waitForLoadState();
      const code = await until(
        `a code for ${email} on the mailbox page`,
        async () => {
          await mailbox.reload();
          // Newest first: the first message to this address, its code on a line of its own.
          const message = mailbox.getByRole('listitem').filter({ hasText: email }).first();
          if (!(await message.isVisible())) return null;
          return /^\s*(\d{6})\s*$/m.exec(await message.innerText())?.[1] ?? null;
        },
        (x) => x !== null,
        30_000,
      );
      await mailbox.screenshot({ path: path.join(c.artifacts, `${shotName}-mailbox.png`) });
      return code!;
    } finally {
      await mailbox.close();
    }
  }
  return until(
    `a code for ${email} in the stack's terminal output`,
    async () => codeIn(c.stackOutput().join('\n'), email, 'last'),
    (x) => x !== null,
    30_000,
  ) as Promise<string>;
}
export const nav = (page: Page, name: string) =>
  page
    .getByRole('navigation', { name: 'Main' })
    .getByRole('link', { name: new RegExp(`^${name}`) })
    .click();

/** Signs in from the Account screen and waits for the account to show (the sync and upgrade flows). */
export async function signIn(page: Page, email: string, password: string): Promise<void> {
  await nav(page, 'Account');
  await visible(page.getByRole('heading', { name: 'Sign in' }));
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password', { exact: true }).fill(password);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await visible(page.getByText(email));
}

/**
 * Starts recording the progress values the page shows, so a fast job's live progress is still
 * observed: a MutationObserver notes every aria-valuenow a progress bar takes.
 */
async function watchProgress(page: Page): Promise<() => Promise<number[]>> {
  // A string, because this file is type-checked without the DOM library.
  await page.evaluate(`(() => {
    window.__progress = [];
    window.__progressObserver?.disconnect();
    const note = () => {
      for (const el of document.querySelectorAll('[role="progressbar"]')) {
        const v = Number(el.getAttribute('aria-valuenow'));
        if (window.__progress[window.__progress.length - 1] !== v) window.__progress.push(v);
      }
    };
    window.__progressObserver = new MutationObserver(note);
    window.__progressObserver.observe(document.body, { subtree: true, childList: true, attributes: true, attributeFilter: ['aria-valuenow'] });
  })()`);
  return () => page.evaluate('window.__progress') as Promise<number[]>;
}

/** Waits until the job for `prompt` is Done; fails at once, with the app's message, if it fails. */
export async function jobDone(page: Page, prompt: string, timeoutMs: number): Promise<void> {
  const done = page.getByRole('listitem', { name: `Done: ${prompt}` }).first();
  const failed = page.getByRole('listitem', { name: `Failed: ${prompt}` }).first();
  await until(
    `the job "${prompt}" to finish`,
    async () =>
      (await done.isVisible())
        ? 'done'
        : (await failed.isVisible())
          ? `failed: ${await failed.innerText()}`
          : 'running',
    (state) => {
      if (state.startsWith('failed')) throw new Error(`the job failed in the UI: ${state}`);
      return state === 'done';
    },
    timeoutMs,
  );
}

/** Fills the Generate form for a quick run of the fixture model and submits it. */
export async function generate(page: Page, prompt: string, where: 'This computer' | 'Atelier Cloud'): Promise<void> {
  await nav(page, 'Generate');
  await page.getByLabel('Prompt', { exact: true }).fill(prompt);
  await page.getByLabel('Steps', { exact: true }).fill('2');
  await page.getByLabel('Seed', { exact: true }).fill(SEED);
  await page.getByRole('radio', { name: where }).check();
  // The default model: on the Free plan the cloud serves only its default model.
  if (where === 'Atelier Cloud') await page.getByLabel('Model', { exact: true }).selectOption('');
  await page.getByRole('button', { name: 'Generate', exact: true }).click();
}

export async function localFlow(steps: Steps, ctx: () => FlowContext): Promise<void> {
  await steps.run('first run opens on Generate with a labelled prompt', async () => {
    const c = ctx();
    await c.page.goto(c.url);
    await visible(c.page.getByLabel('Prompt', { exact: true }));
    await enabled(c.page.getByRole('button', { name: 'Generate', exact: true }));
    // The token left the address bar; the screen is in the hash.
    await until(
      'the address to show #/generate',
      async () => c.page.url(),
      (u) => /#\/generate$/.test(u),
    );
    // The seed field shows no number that will not be used: "random" until a seed is locked.
    const seed = c.page.getByLabel('Seed', { exact: true });
    await hasValue(seed, '');
    await hasAttr(seed, 'placeholder', 'random');
    // Generate is never below the fold, at the smallest supported window too.
    for (const size of SIZES) {
      await c.page.setViewportSize(size);
      await inSight(c.page, c.page.getByRole('button', { name: 'Generate', exact: true }), 'the Generate button');
    }
    await c.page.setViewportSize(SIZES[0]);
    await shot(c, '01-generate-first-run');
  });

  await steps.run('the shipped demo model draws what a newcomer types: a red circle on a blue background', async () => {
    const { page } = ctx();
    await nav(page, 'Generate');
    // Nothing chosen but the prompt (and a seed, so the run repeats): the default model at its native size.
    await page.getByLabel('Prompt', { exact: true }).fill(DEMO_PROMPT);
    await page.getByLabel('Seed', { exact: true }).fill(DEMO_SEED);
    await page.getByRole('radio', { name: 'This computer' }).check();
    await page.getByRole('button', { name: 'Generate', exact: true }).click();
    await jobDone(page, DEMO_PROMPT, 180_000);
    await nav(page, 'Gallery');
    const cell = page
      .getByRole('listbox', { name: 'Images' })
      .getByRole('option', { name: new RegExp(DEMO_PROMPT) })
      .first();
    await visible(cell);
    await cell.dblclick();
    const viewer = page.getByRole('dialog', { name: 'Image viewer' });
    const img = viewer.getByRole('img', { name: DEMO_PROMPT });
    await until(
      'the picture to load',
      () => img.evaluate((el) => (el as unknown as { naturalWidth: number }).naturalWidth),
      (w) => w > 0,
    );
    // The pixels the viewer shows, read back through a canvas at the picture's own size.
    const seen = await img.evaluate((el) => {
      const image = el as unknown as { naturalWidth: number; naturalHeight: number };
      const doc = (globalThis as unknown as { document: { createElement(t: 'canvas'): unknown } }).document;
      const canvas = doc.createElement('canvas') as {
        width: number;
        height: number;
        getContext(k: '2d'): {
          drawImage(i: unknown, x: number, y: number): void;
          getImageData(x: number, y: number, w: number, h: number): { data: ArrayLike<number> };
        };
      };
      canvas.width = image.naturalWidth;
      canvas.height = image.naturalHeight;
      const g = canvas.getContext('2d');
      g.drawImage(el, 0, 0);
      return {
        width: canvas.width,
        height: canvas.height,
        data: Array.from(g.getImageData(0, 0, canvas.width, canvas.height).data),
      };
    });
    const reading = readPicture({
      width: seen.width,
      height: seen.height,
      channels: 4,
      data: Uint8Array.from(seen.data),
    });
    assert(
      reading.colour === 'red' && reading.shape === 'circle' && reading.background === 'blue',
      `asked for "${DEMO_PROMPT}", the gallery shows a ${reading.colour ?? 'no'} ${reading.shape ?? 'shape'} on ${reading.background} (${seen.width}×${seen.height})`,
    );
    await shot(ctx(), '01b-demo-model-red-circle', viewer);
    await page.keyboard.press('Escape');
    await hidden(viewer);
  });

  await steps.run('settings lists the fixture model (importing it when missing)', async () => {
    const { page, fixtureModelsDir } = ctx();
    await nav(page, 'Settings');
    await visible(page.getByRole('heading', { name: 'Settings' }));
    const models = page.getByRole('region', { name: 'Models' });
    if (!(await models.getByText(FIXTURE_MODEL).first().isVisible())) {
      await page.getByLabel('Import a model folder').fill(path.join(fixtureModelsDir, FIXTURE_MODEL));
      await page.getByLabel('How').selectOption('link');
      await page.getByRole('button', { name: 'Import', exact: true }).click();
      await visible(models.getByText(FIXTURE_MODEL).first());
    }
    await models
      .getByRole('radio', { name: new RegExp(FIXTURE_MODEL) })
      .first()
      .check();
    // The demo model ships with Atelier: it says what it draws, and it is not offered for removal.
    await visible(models.getByText(/Knows shapes: circle, square, triangle/).first());
    if ((await models.getByRole('button', { name: /Remove Atelier demo/ }).count()) !== 0)
      throw new Error('the shipped demo model is offered for removal');
    await shot(ctx(), '02-settings');
  });

  await steps.run(
    'models: fixtures labelled as such, real models one click away in the catalogue',
    async () => {
      const { page } = ctx();
      await nav(page, 'Settings');
      const models = page.getByRole('region', { name: 'Models' });
      // Fixture models say what they are: random weights, noise.
      await visible(models.getByText('Test fixture', { exact: true }).first());
      // Real models are one click away: the catalogue lists them with size, licence and hardware.
      const catalogue = page.getByRole('list', { name: 'Model catalogue' });
      await visible(catalogue.getByRole('listitem').first());
      const first = catalogue.getByRole('listitem').first();
      await hasText(first, /Size/);
      await hasText(first, /Licence/);
      await hasText(first, /Needs/);
      await visible(first.getByRole('button', { name: /^(Download|Resume) / }).or(first.getByText('Installed')));
      // The download box asks for what it can take (a manifest), not a .zip.
      await hasAttr(page.getByLabel('Download from a manifest URL'), 'placeholder', /\.json$/);
      await shot(ctx(), '02b-settings-catalogue', page.getByRole('heading', { name: 'Get a model' }));
    },
    { independent: true },
  );

  await steps.run('an inline message stops an invalid request', async () => {
    const { page } = ctx();
    await nav(page, 'Generate');
    await page.getByLabel('Prompt', { exact: true }).fill('   ');
    await page.getByRole('button', { name: 'Generate', exact: true }).click();
    await visible(page.getByText('prompt must not be empty'));
  });

  await steps.run('generates locally with the fixture model (Ctrl+Enter) and shows live progress', async () => {
    const { page } = ctx();
    await nav(page, 'Generate');
    await page.getByLabel('Prompt', { exact: true }).fill(LOCAL_PROMPT);
    await page.getByLabel('Steps', { exact: true }).fill('2');
    await page.getByLabel('Seed', { exact: true }).fill(SEED);
    await page.getByRole('radio', { name: 'This computer' }).check();
    await hasText(page.getByTestId('route-reason'), /\S/);
    const progress = await watchProgress(page);
    await page.getByLabel('Prompt', { exact: true }).press('Control+Enter');
    const job = page.getByRole('listitem', { name: new RegExp(`: ${LOCAL_PROMPT}`) }).first();
    await visible(job);
    await visible(job.getByText('Local', { exact: true }));
    await jobDone(page, LOCAL_PROMPT, 120_000);
    const seen = await progress();
    assert(
      seen.some((v) => v > 0 && v < 100),
      `expected intermediate progress, saw ${JSON.stringify(seen)}`,
    );
    // A finished card does not repeat the routing sentence of the moment it was submitted.
    const done = page.getByRole('listitem', { name: `Done: ${LOCAL_PROMPT}` }).first();
    await count(done.getByText('You chose to run on this computer.'), 0);
    await shot(ctx(), '03-generate-local-done');
  });

  await steps.run('a batch says which image it is on, and progress is in sight at 800×600', async () => {
    const { page } = ctx();
    await nav(page, 'Generate');
    await page.setViewportSize(SIZES[1]);
    const prompt = 'two small boats in a row';
    await page.getByLabel('Prompt', { exact: true }).fill(prompt);
    await page.getByLabel('Steps', { exact: true }).fill('3');
    await page.getByLabel('Images', { exact: true }).fill('2');
    await page.getByRole('radio', { name: 'This computer' }).check();
    await page.evaluate(`(() => {
      window.__labels = [];
      window.__labelObserver?.disconnect();
      const note = () => {
        for (const el of document.querySelectorAll('[role="progressbar"]')) {
          const t = el.getAttribute('aria-valuetext');
          if (t && window.__labels[window.__labels.length - 1] !== t) window.__labels.push(t);
        }
      };
      window.__labelObserver = new MutationObserver(note);
      window.__labelObserver.observe(document.body, { subtree: true, childList: true, attributes: true });
    })()`);
    await page.getByRole('button', { name: 'Generate', exact: true }).click();
    const latest = page.getByTestId('latest-progress');
    await visible(latest);
    await inSight(page, latest, 'the progress of the submitted job');
    await shot(ctx(), '03b-generate-batch-progress');
    await jobDone(page, prompt, 180_000);
    const labels = (await page.evaluate('window.__labels')) as string[];
    assert(
      labels.some((l) => /^Image [12] of 2 · step \d of 3$/.test(l)),
      `expected "Image n of 2 · step k of 3", saw ${JSON.stringify(labels)}`,
    );
    await page.getByLabel('Images', { exact: true }).fill('1');
    await page.setViewportSize(SIZES[0]);
  });

  await steps.run('the image appears in the gallery with its metadata', async () => {
    const { page } = ctx();
    await nav(page, 'Gallery');
    const grid = page.getByRole('listbox', { name: 'Images' });
    const cell = grid.getByRole('option', { name: new RegExp(LOCAL_PROMPT) }).first();
    await visible(cell);
    await shot(ctx(), '04-gallery');
    await cell.dblclick();
    const viewer = page.getByRole('dialog', { name: 'Image viewer' });
    await visible(viewer);
    const meta = viewer.getByRole('table');
    await hasText(meta.getByRole('row', { name: /Prompt/ }).first(), LOCAL_PROMPT);
    await hasText(meta.getByRole('row', { name: /^Seed/ }), SEED);
    await hasText(meta.getByRole('row', { name: /^Steps/ }), '2');
    await hasText(meta.getByRole('row', { name: /^Model/ }), /\S/);
    await visible(viewer.getByRole('img', { name: LOCAL_PROMPT }));
    // The viewer takes focus, and Tab stays inside it.
    await until(
      'focus to be inside the viewer',
      () => page.evaluate<boolean>(`!!document.activeElement?.closest('dialog[open]')`),
      (v) => v,
    );
    for (let i = 0; i < 25; i++) await page.keyboard.press('Tab');
    assert(await page.evaluate<boolean>(`!!document.activeElement?.closest('dialog[open]')`), 'Tab left the viewer');
    // A toast raised while the viewer is open shows above it, where it can be read and clicked.
    await viewer.getByRole('button', { name: 'Copy seed' }).click();
    const toast = page.getByText(`Seed ${SEED} copied.`);
    await visible(toast);
    const onTop = await toast.evaluate((el) => {
      const r = (
        el as unknown as { getBoundingClientRect(): { x: number; y: number; width: number; height: number } }
      ).getBoundingClientRect();
      const doc = (globalThis as unknown as { document: { elementFromPoint(x: number, y: number): unknown } }).document;
      return doc.elementFromPoint(r.x + r.width / 2, r.y + r.height / 2) === el;
    });
    assert(onTop, 'the toast is hidden under the viewer');
    // The full image really loaded.
    await until(
      'the full image to load',
      () =>
        viewer
          .getByRole('img', { name: LOCAL_PROMPT })
          .evaluate((img) => (img as unknown as { naturalWidth: number }).naturalWidth),
      (w) => w > 0,
    );
    await shot(ctx(), '05-viewer');
  });

  await steps.run('viewer: star, Esc closes, "Reuse settings" fills Generate', async () => {
    const { page } = ctx();
    const viewer = page.getByRole('dialog', { name: 'Image viewer' });
    await viewer.getByRole('button', { name: /Star/ }).click();
    await visible(viewer.getByRole('button', { name: /Starred/ }));
    await page.keyboard.press('Escape');
    await hidden(viewer);
    const cell = page.getByRole('option', { name: new RegExp(`${LOCAL_PROMPT}, starred`) }).first();
    await visible(cell);
    await cell.dblclick();
    await viewer.getByRole('button', { name: 'Reuse settings' }).click();
    await hasValue(page.getByLabel('Prompt', { exact: true }), LOCAL_PROMPT);
    await hasValue(page.getByLabel('Seed', { exact: true }), SEED);
    await hasAttr(page.getByRole('button', { name: 'Lock seed' }), 'aria-pressed', 'true');
  });

  await steps.run('gallery: boards, delete with undo', async () => {
    const { page } = ctx();
    await nav(page, 'Gallery');
    await page.getByLabel('New board name').fill('Lighthouses');
    await page.getByRole('button', { name: 'Create board' }).click();
    const boards = page.getByRole('navigation', { name: 'Boards' });
    await visible(boards.getByRole('button', { name: /^Lighthouses/ }));
    const grid = page.getByRole('listbox', { name: 'Images' });
    await grid.getByRole('option').first().click();
    await page.getByLabel('Move to board').selectOption({ label: 'Lighthouses' });
    await hasText(boards.getByRole('button', { name: /^Lighthouses/ }), '1');
    const before = await grid.getByRole('option').count();
    await grid.getByRole('option').first().click();
    await page.getByRole('button', { name: 'Delete', exact: true }).click();
    await visible(page.getByText(/^Deleted 1 image/));
    await count(grid.getByRole('option'), before - 1);
    await page.getByRole('button', { name: 'Undo' }).click();
    await visible(page.getByText(/^Restored 1 image/));
    await count(page.getByRole('listbox', { name: 'Images' }).getByRole('option'), before);
  });

  await steps.run('queue lists the finished local job', async () => {
    const { page } = ctx();
    await nav(page, 'Queue');
    await visible(
      page
        .getByRole('list', { name: 'Finished jobs' })
        .getByRole('listitem', { name: `Done: ${LOCAL_PROMPT}` })
        .first(),
    );
    await shot(ctx(), '06-queue');
  });

  await steps.run('queue: reorder waiting jobs, cancel running and waiting ones', async () => {
    const { page } = ctx();
    const prompts = ['queue test one', 'queue test two', 'queue test three'];
    await nav(page, 'Generate');
    await page.getByRole('radio', { name: 'This computer' }).check();
    await page.getByLabel('Steps', { exact: true }).fill('150');
    for (const p of prompts) {
      await page.getByLabel('Prompt', { exact: true }).fill(p);
      await page.getByRole('button', { name: 'Generate', exact: true }).click();
      await visible(page.getByRole('listitem', { name: new RegExp(`: ${p}$`) }));
    }
    await nav(page, 'Queue');
    const active = page.getByRole('list', { name: 'Active jobs' });
    const order = async () =>
      (await active.getByRole('listitem').evaluateAll((els) => els.map((e) => e.getAttribute('aria-label') ?? ''))).map(
        (l) => l.replace(/^[^:]+: /, ''),
      );
    await until('all three jobs in the queue', order, (o) => prompts.every((p) => o.includes(p)));
    const third = active.getByRole('listitem', { name: `Queued: ${prompts[2]}` });
    await third.getByRole('button', { name: 'Move up' }).click();
    await until(
      'the third job to move ahead of the second',
      order,
      (o) => o.indexOf(prompts[2]!) < o.indexOf(prompts[1]!),
    );
    await shot(ctx(), '06b-queue-reordered');
    for (const p of prompts) {
      await active
        .getByRole('listitem', { name: new RegExp(`: ${p}$`) })
        .getByRole('button', { name: 'Cancel' })
        .click();
      await visible(page.getByRole('listitem', { name: `Canceled: ${p}` }));
    }
    await count(active.getByRole('listitem'), 0);
    await nav(page, 'Generate');
    await page.getByLabel('Steps', { exact: true }).fill('2');
  });

  await steps.run('dark theme from Settings', async () => {
    const { page } = ctx();
    await nav(page, 'Settings');
    await page.getByLabel('Theme').selectOption('dark');
    await hasAttr(page.locator('html'), 'data-theme', 'dark');
    const background = () => page.evaluate<string>('getComputedStyle(document.body).backgroundColor');
    // The palette really switches, not only the attribute (light-dark() follows color-scheme).
    assert((await background()) === 'rgb(18, 18, 23)', `dark theme background is ${await background()}`);
    await shot(ctx(), '07-settings-dark');
    await page.getByLabel('Theme').selectOption('system');
    await hasAttr(page.locator('html'), 'data-theme', null);
    // The browser is launched with a light system scheme.
    assert((await background()) === 'rgb(246, 246, 248)', `system (light) background is ${await background()}`);
  });

  await steps.run('no uncaught errors in the page', async () => {
    const { consoleErrors } = ctx();
    assert(consoleErrors.length === 0, `uncaught errors in the page:\n${consoleErrors.join('\n')}`);
  });
}

export async function cloudFlow(steps: Steps, ctx: () => FlowContext): Promise<void> {
  const email = `e2e-${Date.now().toString(36)}@example.com`;
  const password = 'Atelier2e2e';

  await steps.run('sign up with live password feedback and confirm with the emailed code', async () => {
    const c = ctx();
    const { page } = c;
    await nav(page, 'Account');
    await page.getByRole('button', { name: 'Create an account' }).click();
    await page.getByLabel('Email').fill(email);
    const rules = page.getByRole('list', { name: 'Password requirements' });
    await page.getByLabel('Password', { exact: true }).fill('short');
    await hasText(rules.getByText('At least 8 characters'), 'missing');
    await page.getByLabel('Password', { exact: true }).fill(password);
    await hasText(rules.getByText('At least 8 characters'), 'done');
    await hasText(rules.getByText('A digit'), 'done');
    await shot(c, '08-account-sign-up');
    await page.getByRole('button', { name: 'Create account' }).click();
    await visible(page.getByRole('heading', { name: 'Confirm your email' }));
    await shot(c, '08b-account-confirm');
    await page.getByLabel('Verification code').fill(await emailedCode(c, email, '08b-account-confirm'));
    await page.getByRole('button', { name: 'Confirm', exact: true }).click();
    await visible(page.getByRole('heading', { name: 'Sign in' }));
    await page.getByLabel('Email').fill(email);
    await page.getByLabel('Password', { exact: true }).fill(password);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await visible(page.getByText(email));
    await exactText(page.getByTestId('plan-badge'), 'Free');
    await visible(page.getByText('0 of 100 cloud images used').first());
    // Billing is off on the local stack: said plainly from the start, no Upgrade to click into an error.
    await visible(page.getByTestId('billing-off'));
    await hasText(page.getByTestId('billing-off'), 'Upgrades are not available on this server.');
    await count(page.getByRole('button', { name: 'Upgrade' }), 0);
    await count(page.getByRole('button', { name: 'Manage subscription' }), 0);
    await shot(c, '09-account-signed-in');
  });

  await steps.run('signed in, Automatic asks once before it uses metered cloud runs', async () => {
    const { page } = ctx();
    await nav(page, 'Generate');
    await page.getByRole('radio', { name: 'Automatic' }).check();
    // The default model: the cloud serves it on every plan.
    await page.getByLabel('Model', { exact: true }).selectOption('');
    const ask = page.getByTestId('ask-cloud');
    await visible(ask);
    await hasText(page.getByTestId('route-reason'), /runs it here until you allow cloud runs/);
    await page.setViewportSize(SIZES[1]);
    await inSight(page, ask.getByRole('button', { name: 'Keep on this computer' }), 'the ask-once question');
    await page.setViewportSize(SIZES[0]);
    await shot(ctx(), '09b-generate-ask-cloud');
    await ask.getByRole('button', { name: 'Keep on this computer' }).click();
    await hidden(ask);
    await hasText(page.getByTestId('route-reason'), /keep Automatic runs on this computer/);
  });

  await steps.run('generates in the cloud with the cost shown first and live progress', async () => {
    const { page } = ctx();
    await nav(page, 'Generate');
    await page.getByLabel('Prompt', { exact: true }).fill(CLOUD_PROMPT);
    await page.getByRole('radio', { name: 'Atelier Cloud' }).check();
    await hasText(page.getByTestId('cloud-cost'), /uses 1 of your 100 cloud images left/);
    await shot(ctx(), '10-generate-cloud-cost');
    const progress = await watchProgress(page);
    await generate(page, CLOUD_PROMPT, 'Atelier Cloud');
    const job = page.getByRole('listitem', { name: new RegExp(`: ${CLOUD_PROMPT}`) }).first();
    await visible(job.getByText('Cloud', { exact: true }));
    await jobDone(page, CLOUD_PROMPT, 180_000);
    const seen = await progress();
    assert(
      seen.some((v) => v > 0 && v < 100),
      `expected intermediate progress, saw ${JSON.stringify(seen)}`,
    );
    await shot(ctx(), '11-generate-cloud-done');
  });

  await steps.run('the cloud image joins the gallery and the usage meter updates', async () => {
    const { page } = ctx();
    await nav(page, 'Gallery');
    const grid = page.getByRole('listbox', { name: 'Images' });
    await visible(grid.getByRole('option', { name: new RegExp(CLOUD_PROMPT) }).first(), 60_000);
    await visible(grid.getByRole('option', { name: new RegExp(LOCAL_PROMPT) }).first());
    await shot(ctx(), '12-gallery-local-and-cloud');
    await nav(page, 'Account');
    await visible(page.getByText('1 of 100 cloud images used').first(), 30_000);
  });
  await img2imgCloudFlow(steps, ctx);

  await steps.run('gallery by keyboard: arrows, Ctrl+A, Enter opens, → walks, search filters', async () => {
    const { page } = ctx();
    await nav(page, 'Gallery');
    const grid = page.getByRole('listbox', { name: 'Images' });
    await grid.focus();
    await page.keyboard.press('Home');
    await hasAttr(grid, 'aria-activedescendant', /^cell-img_/);
    await page.keyboard.press('ControlOrMeta+a');
    await count(grid.getByRole('option', { selected: true }), await grid.getByRole('option').count());
    await visible(page.getByText(/^\d+ selected$/));
    await page.keyboard.press('Escape');
    await count(grid.getByRole('option', { selected: true }), 0);
    // After arrow keys, Enter opens the highlighted image (not the one that was there before).
    await page.keyboard.press('ArrowRight');
    const activeId = await grid.getAttribute('aria-activedescendant');
    const activeLabel = (await page.locator(`[id="${activeId}"]`).getAttribute('aria-label'))!.replace(
      /, starred$/,
      '',
    );
    await page.keyboard.press('Enter');
    const viewer = page.getByRole('dialog', { name: 'Image viewer' });
    await visible(viewer);
    await visible(viewer.getByRole('img', { name: activeLabel, exact: true }));
    // The image itself, not its prompt: a batch's images share one.
    const shown = () => viewer.locator('.viewer-image img').getAttribute('src');
    const first = await shown();
    // → walks forward, ← back; whichever way there is a neighbour.
    const atEnd = await viewer.getByRole('button', { name: 'Next image' }).isDisabled();
    await page.keyboard.press(atEnd ? 'ArrowLeft' : 'ArrowRight');
    await until('the viewer to show the next image', shown, (src) => src !== first);
    await page.keyboard.press('Escape');
    await hidden(viewer);
    await page.getByLabel('Search images').fill('lighthouse');
    await count(grid.getByRole('option', { name: new RegExp(CLOUD_PROMPT) }), 0);
    await visible(grid.getByRole('option', { name: new RegExp(LOCAL_PROMPT) }));
    await page.getByLabel('Search images').fill('');
    await visible(grid.getByRole('option', { name: new RegExp(CLOUD_PROMPT) }));
  });

  await steps.run('a plan limit is shown before the click, with the way out', async () => {
    const c = ctx();
    const { page } = c;
    await nav(page, 'Generate');
    await page.getByRole('radio', { name: 'Atelier Cloud' }).check();
    await page.getByLabel('Images', { exact: true }).fill('8');
    const blocker = page.getByTestId('blocker');
    await hasText(blocker, /Batches of 8 need the Pro plan/);
    await hasText(blocker, 'Upgrades are not available on this server.');
    await visible(blocker.getByRole('button', { name: 'Run on this computer instead' }));
    assert(
      await page.getByRole('button', { name: 'Generate', exact: true }).isDisabled(),
      'Generate stays enabled for a request the plan refuses',
    );
    // Why Generate is disabled, and the way out, are in sight next to it at both sizes.
    for (const size of SIZES) {
      await page.setViewportSize(size);
      await inSight(page, blocker, 'the plan-limit message');
      await inSight(page, page.getByRole('button', { name: 'Generate', exact: true }), 'the Generate button');
    }
    await page.setViewportSize(SIZES[0]);
    await shot(c, '12b-plan-limit-before-click');
    await page.getByLabel('Images', { exact: true }).fill('1');
    await hidden(blocker);
  });

  await steps.run('at quota the app says so before the click and runs it here in one click', async () => {
    const c = ctx();
    const { page } = c;
    c.admin('set-usage', email, '100');
    // The app learns the new usage the way it does after another device used it: "Sync now".
    await nav(page, 'Settings');
    await page.getByRole('button', { name: 'Sync now' }).click();
    await nav(page, 'Account');
    await visible(page.getByText('100 of 100 cloud images used').first(), 30_000);
    await shot(c, '14-account-at-quota');
    await nav(page, 'Generate');
    const prompt = `${CLOUD_PROMPT} again`;
    await page.getByLabel('Prompt', { exact: true }).fill(prompt);
    await page.getByLabel('Steps', { exact: true }).fill('2');
    await page.getByRole('radio', { name: 'Atelier Cloud' }).check();
    const blocker = page.getByTestId('blocker');
    await hasText(blocker, /Cloud quota reached/);
    await hasText(blocker, /used all 100 cloud images/);
    assert(
      await page.getByRole('button', { name: 'Generate', exact: true }).isDisabled(),
      'Generate is enabled at quota',
    );
    await page.setViewportSize(SIZES[1]);
    await inSight(page, blocker.getByRole('button', { name: 'Run on this computer instead' }), 'the way out at quota');
    await page.setViewportSize(SIZES[0]);
    await shot(c, '13-quota-before-click');
    await blocker.getByRole('button', { name: 'Run on this computer instead' }).click();
    await visible(
      page
        .getByRole('listitem', { name: new RegExp(`: ${prompt}$`) })
        .first()
        .getByText('Local', { exact: true }),
    );
    await jobDone(page, prompt, 120_000);
  });

  await steps.run('sign out, reset the password with the emailed code, sign in again', async () => {
    const c = ctx();
    const { page } = c;
    await nav(page, 'Account');
    await page.getByRole('button', { name: 'Sign out' }).click();
    await visible(page.getByRole('heading', { name: 'Sign in' }));
    await visible(page.getByText('Sign in for cloud runs'));
    await page.getByRole('button', { name: 'Forgot password?' }).click();
    await page.getByLabel('Email').fill(email);
    await page.getByRole('button', { name: 'Send code' }).click();
    await visible(page.getByRole('heading', { name: 'Choose a new password' }));
    await page.getByLabel('Verification code').fill(await emailedCode(c, email, '16-reset'));
    await page.getByLabel('New password', { exact: true }).fill(`${password}X`);
    await page.getByRole('button', { name: 'Set new password' }).click();
    await visible(page.getByRole('heading', { name: 'Sign in' }));
    await page.getByLabel('Email').fill(email);
    await page.getByLabel('Password', { exact: true }).fill(password);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await visible(page.getByRole('alert').filter({ hasText: /wrong|not valid|incorrect/i }));
    await page.getByLabel('Password', { exact: true }).fill(`${password}X`);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await visible(page.getByTestId('plan-badge'));
  });

  await steps.run(
    'export my data with progress; delete an account after typing its email, then signed out',
    async () => {
      const c = ctx();
      const { page } = c;
      await nav(page, 'Account');
      const exportBox = page.getByTestId('export-data');
      await exportBox.getByRole('button', { name: 'Export my data' }).click();
      await visible(exportBox.getByText(/^Saved \d+ images? \(.+\) to/), 60_000);
      await hasText(page.getByTestId('export-path'), /atelier-export-.+\.zip$/);
      await shot(c, '16b-account-export', exportBox);
      // A second account, so the first keeps its images for the offline step that follows.
      const doomed = `e2e-del-${Date.now().toString(36)}@example.com`;
      await page.getByRole('button', { name: 'Sign out' }).click();
      await page.getByRole('button', { name: 'Create an account' }).click();
      await page.getByLabel('Email').fill(doomed);
      await page.getByLabel('Password', { exact: true }).fill(password);
      await page.getByRole('button', { name: 'Create account' }).click();
      await page.getByLabel('Verification code').fill(await emailedCode(c, doomed, '16c-delete-confirm'));
      await page.getByRole('button', { name: 'Confirm', exact: true }).click();
      // The confirm form's own name ("Confirm your email") matches the label "Email" until it is gone.
      await visible(page.getByRole('heading', { name: 'Sign in' }));
      await page.getByLabel('Email').fill(doomed);
      await page.getByLabel('Password', { exact: true }).fill(password);
      await page.getByRole('button', { name: 'Sign in', exact: true }).click();
      await visible(page.getByText(doomed).first());
      // The account has finished loading (its usage came back) before the click.
      await visible(page.getByText('0 of 100 cloud images used').first());
      await page.getByRole('button', { name: 'Delete account' }).click();
      const dialog = page.getByRole('dialog', { name: 'Delete account' });
      await visible(dialog.getByText('Deleted for good:'));
      await visible(dialog.getByText(/Images on this computer stay/));
      const confirm = dialog.getByRole('button', { name: 'Delete my account' });
      await dialog.getByLabel('Password').fill(password);
      assert(await confirm.isDisabled(), 'Delete is enabled before the email is typed');
      await dialog.getByLabel(/Type your email/).fill('someone-else@example.com');
      assert(await confirm.isDisabled(), 'Delete is enabled with another email typed');
      await dialog.getByLabel(/Type your email/).fill(doomed);
      await dialog.getByLabel('Password').fill(`${password}-wrong`);
      await enabled(confirm);
      await shot(c, '16d-delete-account-dialog', dialog);
      await confirm.click();
      await visible(dialog.getByRole('alert').filter({ hasText: /does not match this account/ }));
      await dialog.getByLabel('Password').fill(password);
      await confirm.click();
      await visible(page.getByRole('heading', { name: 'Sign in' }), 30_000);
      await visible(page.getByText(/Your cloud account is being deleted/));
      await shot(c, '16e-account-deleted');
      // Back to the first account for the steps that follow.
      await page.getByLabel('Email').fill(email);
      await page.getByLabel('Password', { exact: true }).fill(`${password}X`);
      await page.getByRole('button', { name: 'Sign in', exact: true }).click();
      await visible(page.getByTestId('plan-badge'));
    },
  );

  await steps.run('offline: the app says so when the cloud goes away, and local work goes on', async () => {
    const c = ctx();
    c.admin('set-usage', email, '0');
    await c.stopStack();
    await offlineFlow(c);
  });
}

/**
 * With the stack stopped: a cloud request finds the cloud gone, the offline banner shows and the
 * cloud job waits for the connection; generating on this computer still works.
 */
async function offlineFlow(c: FlowContext): Promise<void> {
  const { page } = c;
  const waiting = 'a boat that waits for the cloud';
  await generate(page, waiting, 'Atelier Cloud');
  await visible(page.getByText(/You are offline/), 90_000);
  await visible(page.getByRole('listitem', { name: `Waiting for connection: ${waiting}` }), 60_000);
  await shot(c, '15-offline');
  await page
    .getByRole('listitem', { name: `Waiting for connection: ${waiting}` })
    .getByRole('button', { name: 'Cancel' })
    .click();
  await generate(page, 'an offline sketch of a harbour', 'This computer');
  await jobDone(page, 'an offline sketch of a harbour', 120_000);
}
