// Usage a person can see (issue 16): the Account chart after cloud generations made in the app and
// by API, read bar by bar, and the low-quota notices at exactly 80 % and 100 %. A second account of
// its own (signed up outside the UI) so the main cloud flow's first-sign-up journey stays untouched.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { signUpConfirmed } from '../../cloud/src/stack/cognito.ts';
import { assert, count, hasAttr, hasText, hidden, until, visible } from './expect.ts';
import { generate, jobDone, nav, shot, type FlowContext } from './flows.ts';
import type { Steps } from './harness.ts';

interface StackFile {
  apiUrl: string;
  cognito: { endpoint: string; userPoolId: string; clientId: string };
}

export async function usageFlow(steps: Steps, ctx: () => FlowContext): Promise<void> {
  const email = `e2e-usage-${Date.now().toString(36)}@example.com`;
  const password = 'Atelier2usage';
  const today = new Date().toISOString().slice(0, 10);
  let accessToken = '';
  let apiUrl = '';

  await steps.run('usage: a second account signs in', async () => {
    const { page, repo } = ctx();
    const stack = JSON.parse(readFileSync(path.join(repo, '.atelier/stack.json'), 'utf8')) as StackFile;
    apiUrl = stack.apiUrl;
    accessToken = (await signUpConfirmed(stack.cognito.endpoint, stack.cognito, email, password)).accessToken;
    await nav(page, 'Account');
    await page.getByLabel('Email').fill(email);
    await page.getByLabel('Password', { exact: true }).fill(password);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await visible(page.getByText(email));
    await visible(page.getByText('0 of 100 cloud images used').first());
  });

  await steps.run('usage: 3 cloud images from the app and 1 by API', async () => {
    const { page } = ctx();
    const twice = 'a usage chart of two lanterns';
    await nav(page, 'Generate');
    await generate(page, twice, 'Atelier Cloud');
    // generate() leaves the form filled; this run is the 2-image batch.
    await jobDone(page, twice, 180_000);
    await page.getByLabel('Images', { exact: true }).fill('2');
    const batch = 'a usage chart of a pair of kites';
    await page.getByLabel('Prompt', { exact: true }).fill(batch);
    await page.getByRole('button', { name: 'Generate', exact: true }).click();
    await jobDone(page, batch, 180_000);
    await page.getByLabel('Images', { exact: true }).fill('1');
    // A script with a token and no desktop header: counted as "by API".
    const res = await fetch(new URL('/v1/generations', apiUrl), {
      method: 'POST',
      headers: { authorization: `Bearer ${accessToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: 'a usage chart drawn by a script', steps: 2, count: 1 }),
    });
    const text = await res.text();
    assert(res.status === 202, `POST /v1/generations answered ${res.status}: ${text}`);
    const { id } = JSON.parse(text) as { id: string };
    await until(
      'the API generation to succeed',
      async () => {
        const g = await fetch(new URL(`/v1/generations/${id}`, apiUrl), {
          headers: { authorization: `Bearer ${accessToken}` },
        });
        return ((await g.json()) as { status: string }).status;
      },
      (status) => {
        if (status === 'failed' || status === 'canceled') throw new Error(`the API generation ${status}`);
        return status === 'succeeded';
      },
      180_000,
    );
  });

  await steps.run("usage: the Account chart shows today's bars as made, the limit and what is left", async () => {
    const c = ctx();
    const { page } = c;
    await nav(page, 'Account');
    await visible(page.getByText('4 of 100 cloud images used').first(), 60_000);
    const chart = page.getByTestId('usage-chart');
    await visible(chart);
    await visible(chart.getByRole('group', { name: 'Cloud images per day this period' }));
    const bar = chart.locator(`[data-testid="usage-day"][data-date="${today}"]`);
    await hasAttr(bar, 'data-desktop', '3');
    await hasAttr(bar, 'data-api', '1');
    const local = Number(await bar.getAttribute('data-local'));
    assert(local > 0, `the local images made earlier in this run are not on today's bar (${local})`);
    await hasAttr(
      bar,
      'aria-label',
      new RegExp(
        `: 3 cloud images from the app, 1 by API, ${local} on this computer \\(not counted\\); 4 of 100 used by then$`,
      ),
    );
    await hasText(
      page.getByTestId('usage-chart-summary'),
      'This period: 4 of 100 cloud images used, 96 left. Last period: 0 of 100.',
    );
    await count(chart.getByTestId('usage-limit-line'), 1);
    await count(chart.getByTestId('usage-cumulative-line'), 1);
    // Only today's bar is in the Tab order; the arrows walk the days and the tooltip follows.
    await count(chart.locator('[data-testid="usage-day"][tabindex="0"]'), 1);
    await bar.focus();
    await hasText(chart.getByTestId('usage-tooltip'), /3 cloud images from the app, 1 by API/);
    const days = await chart.getByTestId('usage-day').count();
    const index = Number(new Date().getUTCDate()) - 1;
    await page.keyboard.press(index > 0 ? 'ArrowLeft' : 'ArrowRight');
    await hasText(chart.getByTestId('usage-tooltip'), /0 cloud images from the app, 0 by API/);
    await page.keyboard.press('End');
    const last = chart.getByTestId('usage-day').nth(days - 1);
    assert(
      await last.evaluate((el) => el === el.ownerDocument.activeElement),
      'End did not move focus to the last day',
    );
    await bar.focus();
    await shot(c, '20-account-usage-chart', chart);
  });

  await steps.run('usage: low-quota notices at exactly 80 % and 100 %, once per period each', async () => {
    const c = ctx();
    const { page } = c;
    const notice = page.getByTestId('quota-notice');
    /** No notice, once the app has checked this usage against the notices already closed. */
    const noNotice = async (used: number) => {
      await hasAttr(page.getByTestId('quota-notice-checked'), 'data-used', String(used), 30_000);
      await count(notice, 0);
    };
    const learn = async () => {
      // As after another device used the quota: the app hears it (event, or Sync now).
      await nav(page, 'Settings');
      await page.getByRole('button', { name: 'Sync now' }).click();
      await nav(page, 'Account');
    };
    c.admin('set-usage', email, '79');
    await learn();
    await visible(page.getByText('79 of 100 cloud images used').first(), 30_000);
    await noNotice(79);
    c.admin('set-usage', email, '80');
    await learn();
    await visible(notice, 30_000);
    await hasAttr(notice, 'data-level', '80');
    await hasText(notice, 'You have used 80 of 100 cloud images this period (80 %). 20 left until');
    // The local stack sells no Pro: no Upgrade button with nothing behind it.
    await count(notice.getByRole('button', { name: 'Upgrade' }), 0);
    await shot(c, '21-quota-notice-80');
    await notice.getByRole('button', { name: 'Dismiss this notice' }).click();
    await hidden(notice);
    c.admin('set-usage', email, '100');
    await learn();
    await visible(page.getByText('100 of 100 cloud images used').first(), 30_000);
    await visible(notice, 30_000);
    await hasAttr(notice, 'data-level', '100');
    await hasText(notice, 'You have used all 100 cloud images this period.');
    await shot(c, '22-quota-notice-100');
    // Esc closes it too, from its buttons.
    await notice.getByRole('button', { name: 'See usage' }).focus();
    await page.keyboard.press('Escape');
    await hidden(notice);
    // Closed once means closed for the period, across a reload of the app.
    await page.reload();
    await visible(page.getByText('100 of 100 cloud images used').first(), 30_000);
    await noNotice(100);
    c.admin('set-usage', email, '80');
    await learn();
    await visible(page.getByText('80 of 100 cloud images used').first(), 30_000);
    await noNotice(80);
  });

  await steps.run('usage: sign out, so the main cloud flow starts with a new account', async () => {
    const { page } = ctx();
    ctx().admin('set-usage', email, '0');
    await nav(page, 'Account');
    await page.getByRole('button', { name: 'Sign out' }).click();
    await visible(page.getByRole('heading', { name: 'Sign in' }));
  });
}
