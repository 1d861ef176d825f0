// Gallery sync in the real UI (issue 13): two desktop profiles of one user — two browser-host
// instances, two library folders — and a third profile of another user, all against the one local
// stack. Images made on one side reach the other with their cloud badge; stars, boards, a board
// rename and a delete made on either side show up on the other; the same image edited on both
// sides while one of them had sync paused ends the same on both; the other user sees none of it.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { signUpConfirmed } from '../../cloud/src/stack/cognito.ts';
import { StackFile } from '../../cloud/src/stack/stack-file.ts';
import { launchChromium } from './chromium.ts';
import { count, hasAttr, hasText, until, visible } from './expect.ts';
import { nav, type FlowContext } from './flows.ts';
import { startChild, type Child, type Steps } from './harness.ts';
import { readFileSync } from 'node:fs';

interface Profile {
  name: string;
  page: Page;
}

const SYNC_TIMEOUT = 90_000;
const grid = (page: Page) => page.getByRole('listbox', { name: 'Images' });
const tile = (page: Page, prompt: string) => grid(page).getByRole('option', { name: new RegExp(`^${prompt}`) });
const indicator = (page: Page) => page.getByTestId('sync-indicator');
/** A board in the sidebar ("Shapes 1": its name and image count). */
const board = (page: Page, name: string) =>
  page.getByRole('navigation', { name: 'Boards' }).getByRole('button', { name: new RegExp(`^${name} \\d+$`) });

/** Clicks the tile so it is the only one selected (the selection bar then acts on it). */
async function selectOnly(page: Page, prompt: string): Promise<void> {
  const sel = page.getByRole('button', { name: 'Clear selection' });
  if (await sel.isVisible()) await sel.click();
  await tile(page, prompt).click();
  await visible(page.getByText('1 selected'));
}

async function signIn(page: Page, email: string, password: string): Promise<void> {
  await nav(page, 'Account');
  await visible(page.getByRole('heading', { name: 'Sign in' }));
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password', { exact: true }).fill(password);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await visible(page.getByText(email));
}

/** Generates one small image on this computer and waits for it in the Queue. */
async function generateHere(page: Page, prompt: string): Promise<void> {
  await nav(page, 'Generate');
  await page.getByLabel('Prompt', { exact: true }).fill(prompt);
  await page.getByLabel('Steps', { exact: true }).fill('2');
  await page.getByRole('radio', { name: 'This computer' }).check();
  await page.getByRole('button', { name: 'Generate', exact: true }).click();
  const done = page.getByRole('listitem', { name: `Done: ${prompt}` }).first();
  const failed = page.getByRole('listitem', { name: `Failed: ${prompt}` }).first();
  await until(
    `the job "${prompt}" to finish`,
    async () => ((await done.isVisible()) ? 'done' : (await failed.isVisible()) ? 'failed' : 'running'),
    (s) => {
      if (s === 'failed') throw new Error(`the job "${prompt}" failed`);
      return s === 'done';
    },
    180_000,
  );
}

/** The gallery's tiles as "prompt|★/☆|badge", sorted: what a person compares between devices. */
async function galleryView(page: Page): Promise<string[]> {
  const tiles = grid(page).getByRole('option');
  const out: string[] = [];
  for (let i = 0; i < (await tiles.count()); i++) {
    const t = tiles.nth(i);
    const label = (await t.getAttribute('aria-label')) ?? '';
    const badge =
      (await t
        .locator('[data-cloud]')
        .getAttribute('data-cloud')
        .catch(() => null)) ?? '-';
    out.push(`${label.replace(', starred', '')}|${label.endsWith(', starred') ? '★' : '☆'}|${badge}`);
  }
  return out.sort();
}

async function sameGallery(a: Profile, b: Profile, what: string): Promise<void> {
  await until(
    `${a.name} and ${b.name} to show the same gallery (${what})`,
    async () => [await galleryView(a.page), await galleryView(b.page)],
    ([x, y]) => JSON.stringify(x) === JSON.stringify(y) && x!.every((v) => v.endsWith('|cloud')),
    SYNC_TIMEOUT,
  );
}

export async function syncFlow(steps: Steps, ctx: () => FlowContext): Promise<void> {
  const hosts: Child[] = [];
  const dirs: string[] = [];
  let browser: BrowserContext | null = null;
  const profiles: Record<'a' | 'b' | 'm', Profile | null> = { a: null, b: null, m: null };
  const p = (k: 'a' | 'b' | 'm') => {
    const v = profiles[k];
    if (!v) throw new Error(`profile ${k} is not up`);
    return v;
  };
  const tmp = (prefix: string) => {
    const d = mkdtempSync(path.join(os.tmpdir(), prefix));
    dirs.push(d);
    return d;
  };
  const PROMPTS = ['a red circle on a blue background', 'a green square on a yellow background'];

  try {
    await steps.run('sync: two profiles of one user and a profile of another user sign in', async () => {
      const c = ctx();
      const stackFile = path.join(c.repo, '.atelier/stack.json');
      const stack = StackFile.parse(JSON.parse(readFileSync(stackFile, 'utf8')));
      const password = 'Atelier2e2e-sync';
      const alice = `e2e-sync-a-${Date.now().toString(36)}@example.com`;
      const mallory = `e2e-sync-m-${Date.now().toString(36)}@example.com`;
      for (const email of [alice, mallory])
        await signUpConfirmed(stack.cognito.endpoint, stack.cognito, email, password);
      browser = await launchChromium(tmp('atelier-e2e-sync-chromium-'), { colorScheme: 'light' });
      for (const [key, email] of [
        ['a', alice],
        ['b', alice],
        ['m', mallory],
      ] as const) {
        const { child, match } = await startChild(
          `host-${key}`,
          path.join(c.repo, 'src-main/host/main.ts'),
          ['--user-data', tmp(`atelier-e2e-sync-${key}-`), '--stack', stackFile],
          { cwd: c.repo, ready: /^(?:OPEN|READY)\s+(http:\/\/127\.0\.0\.1:\d+\/\S*)/, timeoutMs: 180_000 },
        );
        hosts.push(child);
        const page = await browser.newPage();
        await page.setViewportSize({ width: 1280, height: 800 });
        page.setDefaultTimeout(30_000);
        await page.goto(match[1]!);
        await signIn(page, email, password);
        profiles[key] = { name: key === 'm' ? 'the other user' : `profile ${key.toUpperCase()}`, page };
      }
      // Signed in and nothing to do: the shell says so.
      for (const k of ['a', 'b', 'm'] as const) await hasText(indicator(p(k).page), 'Gallery in sync', SYNC_TIMEOUT);
    });

    await steps.run('sync: images made on A upload (cloud badge) and appear on B', async () => {
      const [a, b] = [p('a'), p('b')];
      for (const prompt of PROMPTS) await generateHere(a.page, prompt);
      await nav(a.page, 'Gallery');
      for (const prompt of PROMPTS)
        await hasAttr(tile(a.page, prompt).locator('[data-cloud]'), 'data-cloud', 'cloud', SYNC_TIMEOUT);
      await nav(b.page, 'Gallery');
      await sameGallery(a, b, 'after creating on A');
      // B's grid loads real thumbnails, not the full pictures.
      const src = await tile(b.page, PROMPTS[0]!).locator('img').getAttribute('src');
      if (!src?.includes('.thumb.png')) throw new Error(`B's grid loads ${src}, not a thumbnail`);
    });

    await steps.run('sync: star, board, move, rename and delete on each side reach the other', async () => {
      const [a, b] = [p('a'), p('b')];
      // A: stars the circle, makes a board and puts the square on it.
      await selectOnly(a.page, PROMPTS[0]!);
      await a.page.getByRole('button', { name: 'Star', exact: true }).click();
      await a.page.getByLabel('New board name').fill('Shapes');
      await a.page.getByRole('button', { name: 'Create board' }).click();
      await selectOnly(a.page, PROMPTS[1]!);
      await a.page.getByLabel('Move to board').selectOption({ label: 'Shapes' });
      await sameGallery(a, b, 'after A starred');
      // The board and the square on it reached B.
      await hasText(board(b.page, 'Shapes'), /^Shapes\s+1$/, SYNC_TIMEOUT);
      // B: renames the board (its actions show on hover); A sees the new name.
      await board(b.page, 'Shapes').hover();
      await b.page.getByRole('button', { name: 'Rename board Shapes' }).click();
      const input = b.page.getByLabel('New name for board Shapes');
      await input.fill('Shapes and colours');
      await input.press('Enter');
      await hasText(board(a.page, 'Shapes and colours'), /^Shapes and colours\s+1$/, SYNC_TIMEOUT);
      // B: the square is on that board there too.
      await board(b.page, 'Shapes and colours').click();
      await visible(tile(b.page, PROMPTS[1]!), SYNC_TIMEOUT);
      await b.page.getByRole('navigation', { name: 'Boards' }).getByText('All images').click();
      // B: a third image, made on B, then deleted on A.
      await generateHere(b.page, 'a yellow triangle on a black background');
      await nav(b.page, 'Gallery');
      await visible(tile(a.page, 'a yellow triangle on a black background'), SYNC_TIMEOUT);
      await selectOnly(a.page, 'a yellow triangle on a black background');
      await a.page.getByRole('button', { name: 'Delete', exact: true }).click();
      await count(tile(b.page, 'a yellow triangle on a black background'), 0, SYNC_TIMEOUT);
      await sameGallery(a, b, 'after the delete on A');
    });

    await steps.run('sync: the same image edited on both sides while A was paused ends the same on both', async () => {
      const [a, b] = [p('a'), p('b')];
      // A pauses (its edits wait, as offline): the shell says so and offers Resume.
      await indicator(a.page).getByRole('button', { name: 'Pause sync' }).click();
      await hasText(indicator(a.page), 'Sync paused');
      // A unstars the circle while paused; B unstars and stars it again meanwhile (its edits reach the cloud first).
      await selectOnly(a.page, PROMPTS[0]!);
      await a.page.getByRole('button', { name: 'Unstar', exact: true }).click();
      await hasAttr(tile(a.page, PROMPTS[0]!), 'aria-label', new RegExp(`^${PROMPTS[0]}$`));
      await selectOnly(b.page, PROMPTS[0]!);
      await b.page.getByRole('button', { name: 'Unstar', exact: true }).click();
      await b.page.getByRole('button', { name: 'Star', exact: true }).click();
      await hasAttr(tile(b.page, PROMPTS[0]!), 'aria-label', /, starred$/);
      await hasText(indicator(b.page), 'Gallery in sync', SYNC_TIMEOUT);
      // A comes back: its edit is the last to reach the cloud, so it wins on both sides.
      await indicator(a.page).getByRole('button', { name: 'Resume sync' }).click();
      await hasAttr(tile(b.page, PROMPTS[0]!), 'aria-label', new RegExp(`^${PROMPTS[0]}$`), SYNC_TIMEOUT);
      await sameGallery(a, b, 'after the conflicting edits');
      await hasText(indicator(a.page), 'Gallery in sync', SYNC_TIMEOUT);
    });

    await steps.run('sync: a profile of another user sees none of it', async () => {
      const m = p('m');
      await nav(m.page, 'Gallery');
      await hasText(indicator(m.page), 'Gallery in sync', SYNC_TIMEOUT);
      await visible(m.page.getByText('0 images').or(m.page.getByLabel('0 images')));
      await count(grid(m.page).getByRole('option'), 0);
      await count(board(m.page, 'Shapes and colours'), 0);
    });
  } finally {
    await (browser as BrowserContext | null)?.close().catch(() => undefined);
    for (const h of hosts.reverse()) await h.stop();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  }
}
