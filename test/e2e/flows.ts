// The user journeys, as a person would take them: by labels, roles and visible text.
import path from 'node:path';
import type { Page } from 'playwright-core';
import { assert, count, enabled, exactText, hasAttr, hasText, hasValue, hidden, until, visible } from './expect.ts';
import type { Steps } from './harness.ts';

export interface FlowContext {
  page: Page;
  repo: string;
  artifacts: string;
  url: string;
  fixtureModelsDir: string;
  consoleErrors: string[];
  admin(...args: string[]): string;
  confirmationCode(email: string): string;
  /** Stops the local cloud stack (the last cloud step: the app is then offline). */
  stopStack(): Promise<void>;
}

const LOCAL_PROMPT = 'a small red lighthouse on a cliff';
const CLOUD_PROMPT = 'a blue paper boat on a pond';
const SEED = '1234';
const FIXTURE_MODEL = 'atelier-fixture-turbo';

const shot = (c: FlowContext, name: string) =>
  c.page.screenshot({ path: path.join(c.artifacts, `${name}.png`), fullPage: true });
const nav = (page: Page, name: string) =>
  page
    .getByRole('navigation', { name: 'Main' })
    .getByRole('link', { name: new RegExp(`^${name}`) })
    .click();

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
async function jobDone(page: Page, prompt: string, timeoutMs: number): Promise<void> {
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
async function generate(page: Page, prompt: string, where: 'This computer' | 'Atelier Cloud'): Promise<void> {
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
    await shot(c, '01-generate-first-run');
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
    await shot(ctx(), '02-settings');
  });

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
    await shot(ctx(), '03-generate-local-done');
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
    await page.getByLabel('Verification code').fill(c.confirmationCode(email));
    await page.getByRole('button', { name: 'Confirm', exact: true }).click();
    await visible(page.getByRole('heading', { name: 'Sign in' }));
    await page.getByLabel('Email').fill(email);
    await page.getByLabel('Password', { exact: true }).fill(password);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await visible(page.getByText(email));
    await exactText(page.getByTestId('plan-badge'), 'Free');
    await visible(page.getByText('0 of 100 cloud images used').first());
    await shot(c, '09-account-signed-in');
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
    await page.keyboard.press('Enter');
    const viewer = page.getByRole('dialog', { name: 'Image viewer' });
    await visible(viewer);
    const prompt1 = await viewer.getByRole('row', { name: /^Prompt/ }).innerText();
    // → walks forward, ← back; whichever way there is a neighbour.
    const atEnd = await viewer.getByRole('button', { name: 'Next image' }).isDisabled();
    await page.keyboard.press(atEnd ? 'ArrowLeft' : 'ArrowRight');
    await until(
      'the viewer to show the next image',
      () => viewer.getByRole('row', { name: /^Prompt/ }).innerText(),
      (t) => t !== prompt1,
    );
    await page.keyboard.press('Escape');
    await hidden(viewer);
    await page.getByLabel('Search images').fill('lighthouse');
    await count(grid.getByRole('option', { name: new RegExp(CLOUD_PROMPT) }), 0);
    await visible(grid.getByRole('option', { name: new RegExp(LOCAL_PROMPT) }));
    await page.getByLabel('Search images').fill('');
    await visible(grid.getByRole('option', { name: new RegExp(CLOUD_PROMPT) }));
  });

  await steps.run('at quota the app says so and offers Upgrade', async () => {
    const c = ctx();
    const { page } = c;
    c.admin('set-usage', email, '100');
    await generate(page, `${CLOUD_PROMPT} again`, 'Atelier Cloud');
    const alert = page.getByRole('alert').filter({ hasText: /Cloud quota reached/ });
    await visible(alert);
    await visible(alert.getByRole('button', { name: 'Upgrade' }));
    await shot(c, '13-quota-exceeded');
    await nav(page, 'Account');
    await visible(page.getByText('100 of 100 cloud images used').first(), 30_000);
    await visible(page.getByRole('button', { name: 'Upgrade' }));
    await shot(c, '14-account-at-quota');
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
    await page.getByLabel('Verification code').fill(c.confirmationCode(email));
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
