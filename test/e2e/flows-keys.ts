// Account → API keys (issue 16), as a person scripting Atelier would use it: create a key in the
// UI, copy it, call the stack's API with it from a script (fetch), see "last used" move, revoke it
// in the UI after confirming, and see the script's next request refused with 401.
import path from 'node:path';
import { readStackFile } from '../../cloud/src/stack/stack-file.ts';
import { signUpConfirmed } from '../../cloud/src/stack/cognito.ts';
import { assert, count, enabled, exactText, hasText, hidden, until, visible } from './expect.ts';
import { nav, shot, type FlowContext } from './flows.ts';
import type { Steps } from './harness.ts';

export async function keysFlow(steps: Steps, ctx: () => FlowContext): Promise<void> {
  const email = `e2e-keys-${Date.now().toString(36)}@example.com`;
  const password = 'Atelier2e2e-keys';
  const stack = () => {
    const s = readStackFile(path.join(ctx().repo, '.atelier/stack.json'));
    assert(s, 'the local stack wrote no .atelier/stack.json');
    return s;
  };
  const call = async (key: string, method: string, url: string, body?: unknown) => {
    const res = await fetch(new URL(url, stack().apiUrl), {
      method,
      headers: { authorization: `Bearer ${key}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> & { error?: { code: string } } };
  };
  let key = '';

  await steps.run('API keys: create one in Account with a name and scopes, shown once with Copy', async () => {
    const c = ctx();
    const { page } = c;
    // The account exists already (made straight in cognito-local); the person signs in in the app.
    const s = stack();
    await signUpConfirmed(s.cognito.endpoint, s.cognito, email, password);
    await nav(page, 'Account');
    await page.getByLabel('Email').fill(email);
    await page.getByLabel('Password', { exact: true }).fill(password);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    const panel = page.getByTestId('api-keys');
    await visible(panel.getByRole('heading', { name: 'API keys' }));
    await visible(panel.getByText('You have no API keys.'));
    const create = panel.getByRole('button', { name: 'Create key' });
    assert(await create.isDisabled(), 'Create key is enabled before the key has a name');
    await panel.getByLabel('Key name').fill('nightly script');
    // generate and gallery:read are ticked by default: keep generate, drop gallery:read, add account:read.
    await panel.getByRole('checkbox', { name: /gallery:read/ }).uncheck();
    await panel.getByRole('checkbox', { name: /account:read/ }).check();
    await enabled(create);
    await shot(c, '30-api-keys-create', panel);
    await create.click();
    const dialog = page.getByRole('dialog', { name: 'Your new API key' });
    await visible(dialog.getByRole('heading', { name: 'Copy your new key now' }));
    key = await dialog.getByLabel('New API key').inputValue();
    assert(/^atl_[0-9A-Za-z]{49}$/.test(key), `the dialog shows no whole key: ${key}`);
    await dialog.getByRole('button', { name: 'Copy' }).click();
    await visible(page.getByText('API key copied.'));
    const copied: unknown = await page.evaluate('navigator.clipboard.readText()');
    assert(copied === key, 'Copy did not put the key on the clipboard');
    await shot(c, '31-api-keys-shown-once', dialog);
    await page.keyboard.press('Escape');
    await hidden(dialog);
    const row = panel.getByTestId('api-key-row');
    await count(row, 1);
    await hasText(row, 'nightly script');
    await hasText(row, `${key.slice(0, 12)}…`);
    await hasText(row, 'generate, account:read');
    await hasText(row, 'Never');
    // The list never shows the whole key again.
    await count(page.getByText(key), 0);
  });

  await steps.run('API keys: a script uses the key against the API; its scopes hold; last used shows', async () => {
    const c = ctx();
    const { page } = c;
    const me = await call(key, 'GET', '/v1/me');
    assert(
      me.status === 200 && me.body.email === email,
      `GET /v1/me with the key: ${me.status} ${JSON.stringify(me.body)}`,
    );
    const gallery = await call(key, 'GET', '/v1/images');
    assert(
      gallery.status === 403 && gallery.body.error?.code === 'API_KEY_SCOPE_MISSING',
      `GET /v1/images without gallery:read: ${gallery.status} ${JSON.stringify(gallery.body)}`,
    );
    const mint = await call(key, 'POST', '/v1/api-keys', { name: 'minted', scopes: ['generate'] });
    assert(mint.status === 403 && mint.body.error?.code === 'API_KEY_NOT_ALLOWED', 'a key minted another key');
    // "Last used" is written off the request's path: look again until the list shows it.
    const panel = page.getByTestId('api-keys');
    await until(
      'the key list to show when the key was last used',
      async () => {
        await nav(page, 'Settings');
        await nav(page, 'Account');
        await visible(panel.getByTestId('api-key-row'));
        return panel.getByTestId('api-key-row').innerText();
      },
      (text) => !text.includes('Never'),
      15_000,
    );
    await shot(c, '32-api-keys-last-used', panel);
  });

  await steps.run('API keys: revoke after confirming; the script’s next request is 401', async () => {
    const c = ctx();
    const { page } = c;
    const panel = page.getByTestId('api-keys');
    await panel.getByRole('button', { name: 'Revoke nightly script' }).click();
    const dialog = page.getByRole('dialog', { name: 'Revoke API key' });
    await visible(dialog.getByText(/stop working at once/));
    // Cancel first: nothing changes.
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    await hidden(dialog);
    assert((await call(key, 'GET', '/v1/me')).status === 200, 'the key stopped working after Cancel');
    await panel.getByRole('button', { name: 'Revoke nightly script' }).click();
    await shot(c, '33-api-keys-revoke-confirm', dialog);
    await dialog.getByRole('button', { name: 'Revoke key' }).click();
    await hidden(dialog);
    await visible(page.getByText(/Revoked "nightly script"/));
    await visible(panel.getByText('You have no API keys.'));
    const after = await call(key, 'GET', '/v1/me');
    assert(
      after.status === 401 && after.body.error?.code === 'API_KEY_REVOKED',
      `the revoked key: ${after.status} ${JSON.stringify(after.body)}`,
    );
    await exactText(page.getByTestId('plan-badge'), 'Free');
    // Leave the app signed out, as the cloud flow expects to find it.
    await page.getByRole('button', { name: 'Sign out' }).click();
    await visible(page.getByRole('heading', { name: 'Sign in' }));
  });
}
