// Gallery sync in the real UI (issue 13): two desktop profiles of one user — two browser-host
// instances, two library folders — and a third profile of another user, all against the one local
// stack. Images made on one side reach the other with their cloud badge; stars, boards, a board
// rename and a delete made on either side show up on the other; the same image edited on both
// sides while A was really offline (its cloud traffic runs through a link the test cuts,
// cloud-link.ts) ends the same on both; the other user sees none of it, and with their storage
// nearly full is told an image will not fit before any of its bytes move.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import pg from 'pg';
import type { BrowserContext, Locator, Page } from 'playwright-core';
import { PLANS, newId } from '@atelier/common';
import { LOCAL_S3_CREDENTIALS } from '../../cloud/src/storage/local-s3.ts';
import { signUpConfirmed } from '../../cloud/src/stack/cognito.ts';
import { StackFile } from '../../cloud/src/stack/stack-file.ts';
import { launchChromium } from './chromium.ts';
import { count, hasAttr, hasText, until, visible } from './expect.ts';
import { nav, shot, signIn, type FlowContext } from './flows.ts';
import { startCloudLink, type CloudLink } from './cloud-link.ts';
import { startChild, type Child, type Steps } from './harness.ts';

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

/**
 * The way out of full storage, in the shell or in Settings. The local stack runs without billing,
 * so — as Account and Generate do — the app says plainly that upgrading is not available here
 * instead of offering an Upgrade button that can only fail.
 */
async function upgradeOffered(where: Locator): Promise<void> {
  await hasText(where, 'Upgrades are not available on this server.');
  await count(where.getByRole('button', { name: /^Upgrade/ }), 0);
}

export async function syncFlow(steps: Steps, ctx: () => FlowContext): Promise<void> {
  const hosts: Child[] = [];
  const dirs: string[] = [];
  let browser: BrowserContext | null = null;
  /** Profile A's way to the cloud, cut to take it offline. */
  let link: CloudLink | null = null;
  let mallorySub = '';
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
      await signUpConfirmed(stack.cognito.endpoint, stack.cognito, alice, password);
      mallorySub = (await signUpConfirmed(stack.cognito.endpoint, stack.cognito, mallory, password)).sub;
      // A reaches the cloud only through the link: its own stack file names the relay as the API,
      // and its environment sends every other connection (S3, Cognito) through the link's proxy.
      link = await startCloudLink(stack.apiUrl);
      const linkedStackFile = path.join(tmp('atelier-e2e-sync-link-'), 'stack.json');
      writeFileSync(
        linkedStackFile,
        JSON.stringify({ ...JSON.parse(readFileSync(stackFile, 'utf8')), apiUrl: link.apiUrl }),
      );
      browser = await launchChromium(tmp('atelier-e2e-sync-chromium-'), { colorScheme: 'light' });
      for (const [key, email] of [
        ['a', alice],
        ['b', alice],
        ['m', mallory],
      ] as const) {
        const { child, match } = await startChild(
          `host-${key}`,
          path.join(c.repo, 'src-main/host/main.ts'),
          ['--user-data', tmp(`atelier-e2e-sync-${key}-`), '--stack', key === 'a' ? linkedStackFile : stackFile],
          {
            cwd: c.repo,
            env: key === 'a' ? link.env : {},
            ready: /^(?:OPEN|READY)\s+(http:\/\/127\.0\.0\.1:\d+\/\S*)/,
            timeoutMs: 180_000,
          },
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
      // A's sign-in, events socket and first pass all went through the link.
      if (link.connections < 3) throw new Error(`only ${link.connections} connections went through A's link`);
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

    await steps.run('sync: the same images edited on both sides while A was offline end the same on both', async () => {
      const [a, b] = [p('a'), p('b')];
      const [circle, square] = PROMPTS as [string, string];
      const cutLink = () => {
        if (!link) throw new Error("A's link is not up");
        return link;
      };
      // The circle is starred and on no board; the square is on "Shapes and colours", unstarred.
      cutLink().cut();
      // A, offline: unstars the circle, moves it to the board and deletes the square. The app keeps
      // them: the gallery shows them at once, and the shell says it is offline — not a failure.
      await selectOnly(a.page, circle);
      await a.page.getByRole('button', { name: 'Unstar', exact: true }).click();
      await hasAttr(tile(a.page, circle), 'aria-label', new RegExp(`^${circle}$`));
      await a.page.getByLabel('Move to board').selectOption({ label: 'Shapes and colours' });
      await hasText(board(a.page, 'Shapes and colours'), /^Shapes and colours\s+2$/);
      await selectOnly(a.page, square);
      await a.page.getByRole('button', { name: 'Delete', exact: true }).click();
      await count(tile(a.page, square), 0);
      await hasText(indicator(a.page), 'Offline: will sync when back', SYNC_TIMEOUT);
      await visible(a.page.getByText(/^You are offline\./));
      await until(
        "A's shell not to call being offline a failure",
        () => indicator(a.page).innerText(),
        (t) => !/failed|Retry/.test(t),
      );
      await shot({ ...ctx(), page: a.page }, 'sync-a-offline');
      // B, online meanwhile: unstars and stars the circle again and stars the square. These reach
      // the cloud first; nothing of A's has (B still has the square, and the circle on no board).
      await selectOnly(b.page, circle);
      await b.page.getByRole('button', { name: 'Unstar', exact: true }).click();
      await b.page.getByRole('button', { name: 'Star', exact: true }).click();
      await hasAttr(tile(b.page, circle), 'aria-label', /, starred$/);
      await selectOnly(b.page, square);
      await b.page.getByRole('button', { name: 'Star', exact: true }).click();
      await hasAttr(tile(b.page, square), 'aria-label', /, starred$/);
      await hasText(indicator(b.page), 'Gallery in sync', SYNC_TIMEOUT);
      await hasText(board(b.page, 'Shapes and colours'), /^Shapes and colours\s+1$/);
      await hasText(indicator(a.page), 'Offline: will sync when back');
      // The network comes back: A notices by itself, sends its edits last, and they win per field
      // on both sides — the circle unstarred and on the board, the square deleted (B's star on it
      // was an edit of a field A did not touch, but the image is gone).
      cutLink().restore();
      await hasText(indicator(a.page), 'Gallery in sync', SYNC_TIMEOUT);
      await hasAttr(tile(b.page, circle), 'aria-label', new RegExp(`^${circle}$`), SYNC_TIMEOUT);
      await count(tile(b.page, square), 0, SYNC_TIMEOUT);
      await sameGallery(a, b, 'after the offline edits');
      for (const x of [a, b])
        await hasText(board(x.page, 'Shapes and colours'), /^Shapes and colours\s+1$/, SYNC_TIMEOUT);
      await board(b.page, 'Shapes and colours').click();
      await visible(tile(b.page, circle), SYNC_TIMEOUT);
      await b.page.getByRole('navigation', { name: 'Boards' }).getByText('All images').click();
    });

    await steps.run('sync: a profile of another user sees none of it', async () => {
      const m = p('m');
      await nav(m.page, 'Gallery');
      await hasText(indicator(m.page), 'Gallery in sync', SYNC_TIMEOUT);
      await visible(m.page.getByText('0 images').or(m.page.getByLabel('0 images')));
      await count(grid(m.page).getByRole('option'), 0);
      await count(board(m.page, 'Shapes and colours'), 0);
    });

    await steps.run(
      'sync: over the storage limit the app says so before uploading, and offers the way out',
      async () => {
        const c = ctx();
        const m = p('m');
        const stack = StackFile.parse(JSON.parse(readFileSync(path.join(c.repo, '.atelier/stack.json'), 'utf8')));
        const s3 = stack.s3 as { endpoint: string; bucket: string; region: string } | undefined;
        if (!s3) throw new Error('the stack file names no S3 endpoint');
        const db = new pg.Client({ connectionString: stack.databaseUrl });
        await db.connect();
        // The other user's storage is full but for 100 bytes: another of their devices holds a
        // reservation for a picture of nearly the plan's size (an upload under way counts, as
        // cloud/src/sync/uploads.ts storageUsage says). A reservation, not an image row, so no
        // device tries to download bytes that do not exist.
        const filler = newId('img');
        const limit = PLANS.free.storageBytes;
        try {
          await db.query(
            `INSERT INTO uploads (id, user_id, sha256, size, thumb_sha256, thumb_size, thumb_mime, width, height,
                                metadata, expires_at)
           VALUES ($1, $2, $3, $4, $3, 100, 'image/png', 8192, 8192, '{}', now() + interval '1 hour')`,
            [filler, mallorySub, 'f'.repeat(64), limit - 200],
          );
          const prompt = 'a blue triangle on a red background';
          await generateHere(m.page, prompt);
          await nav(m.page, 'Gallery');
          await visible(tile(m.page, prompt));
          // The shell says it will not fit, and why, without calling it a broken sync. This sentence is
          // the app's own check before reserving (the server's 413 would read "Storage quota exceeded").
          await hasText(indicator(m.page), 'Cloud storage full', SYNC_TIMEOUT);
          await hasText(
            indicator(m.page),
            /1 image does not fit in your cloud storage \(2,?048(\.0)? MB of 2,?048(\.0)? MB used\)/,
          );
          // Its badge says it stays on this computer, not that it is uploading.
          await hasAttr(tile(m.page, prompt).locator('[data-cloud]'), 'data-cloud', 'local', SYNC_TIMEOUT);
          // Nothing was reserved or stored for it: the app decided before any byte moved.
          const { rows } = await db.query<{ uploads: number; images: number }>(
            `SELECT (SELECT count(*)::int FROM uploads WHERE user_id = $1 AND id <> $2) AS uploads,
                  (SELECT count(*)::int FROM images WHERE user_id = $1) AS images`,
            [mallorySub, filler],
          );
          if (rows[0]!.uploads !== 0 || rows[0]!.images !== 0)
            throw new Error(`the cloud holds ${JSON.stringify(rows[0])} for the image that did not fit`);
          const client = new S3Client({
            endpoint: s3.endpoint,
            region: s3.region,
            forcePathStyle: true,
            credentials: LOCAL_S3_CREDENTIALS,
          });
          const listed = await client.send(
            new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: `users/${mallorySub}/` }),
          );
          client.destroy();
          if ((listed.KeyCount ?? 0) !== 0)
            throw new Error(`S3 holds ${listed.Contents?.map((o) => o.Key).join(', ')} for the image that did not fit`);
          await shot({ ...c, page: m.page }, 'sync-storage-full');
          // Settings says the same, with the storage meter; the way out is offered in both places.
          await nav(m.page, 'Settings');
          const panel = m.page.getByTestId('sync-panel');
          await hasText(panel, 'does not fit in your cloud storage');
          await hasText(panel, /Cloud storage: 2(\.0)? GB of 2(\.0)? GB/);
          await shot({ ...c, page: m.page }, 'sync-storage-full-settings', panel);
          await upgradeOffered(indicator(m.page));
          await upgradeOffered(panel);
        } finally {
          await db.query('DELETE FROM uploads WHERE id = $1', [filler]).catch(() => undefined);
          await db.end();
        }
      },
    );
  } finally {
    await (browser as BrowserContext | null)?.close().catch(() => undefined);
    for (const h of hosts.reverse()) await h.stop();
    await (link as CloudLink | null)?.close();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  }
}
