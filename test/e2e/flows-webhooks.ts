// Account → Webhooks (issue 16), as a person uses it: add an endpoint pointing at a receiver this
// flow runs on 127.0.0.1 (the local stack allows private targets), see the secret once, send a
// test, see the delivery in the log (and the request at the receiver, signed with that secret),
// replay it, disable, delete. Runs with its own account and signs out at the end.
import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { signUpConfirmed } from '../../cloud/src/stack/cognito.ts';
import { assert, count, hasText, until, visible } from './expect.ts';
import { nav, type FlowContext } from './flows.ts';
import type { Steps } from './harness.ts';

export async function webhooksFlow(steps: Steps, ctx: () => FlowContext): Promise<void> {
  const received: { headers: IncomingHttpHeaders; body: string }[] = [];
  const receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  const hookUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/atelier-hooks`;
  const email = `e2e-hooks-${Date.now().toString(36)}@example.com`;
  const password = 'Atelier2e2eHooks';
  let secret = '';

  try {
    await steps.run('webhooks: add an endpoint and see its signing secret once', async () => {
      const c = ctx();
      const { page } = c;
      const stack = JSON.parse(readFileSync(path.join(c.repo, '.atelier/stack.json'), 'utf8')) as {
        cognito: { endpoint: string; userPoolId: string; clientId: string };
      };
      await signUpConfirmed(stack.cognito.endpoint, stack.cognito, email, password);
      await nav(page, 'Account');
      await page.getByLabel('Email').fill(email);
      await page.getByLabel('Password', { exact: true }).fill(password);
      await page.getByRole('button', { name: 'Sign in', exact: true }).click();
      const panel = page.getByTestId('webhooks-panel');
      await visible(panel.getByRole('heading', { name: 'Webhooks' }));
      await visible(panel.getByText('No endpoints yet.'));
      // Nothing chosen: said inline, nothing sent.
      await panel.getByRole('button', { name: 'Add endpoint' }).click();
      await visible(panel.getByRole('alert').filter({ hasText: 'Enter the URL of your receiver.' }));
      await panel.getByLabel('Endpoint URL').fill(hookUrl);
      await panel.getByLabel('Plan changed').check();
      await panel.getByLabel('Endpoint URL').press('Enter');
      const dialog = page.getByRole('dialog', { name: 'Signing secret' });
      await visible(dialog);
      secret = await dialog.getByTestId('webhook-secret').inputValue();
      assert(/^whsec_[0-9a-f]{64}$/.test(secret), `unexpected secret ${secret}`);
      await dialog.getByRole('button', { name: 'Copy' }).click();
      await visible(page.getByText('Signing secret copied.'));
      assert((await page.evaluate('navigator.clipboard.readText()')) === secret, 'the clipboard lacks the secret');
      await page.screenshot({ path: path.join(c.artifacts, '20-webhooks-secret.png') });
      await dialog.getByRole('button', { name: 'Done' }).click();
      const row = panel.getByTestId('webhook-endpoint');
      await count(row, 1);
      await hasText(row, hookUrl);
      await hasText(row, 'Cloud generation finished · Plan changed');
      // Shown once: the list never carries it.
      await count(page.getByText(secret), 0);
    });

    await steps.run(
      'webhooks: send a test, see it in the delivery log, signed with that secret; replay it',
      async () => {
        const c = ctx();
        const { page } = c;
        const row = page.getByTestId('webhooks-panel').getByTestId('webhook-endpoint');
        await row.getByRole('button', { name: 'Send test' }).click();
        await visible(page.getByText('Test event sent.', { exact: false }));
        const log = row.getByTestId('webhook-log');
        const delivered = log.getByTestId('webhook-delivery').filter({ hasText: 'ping' });
        await until(
          'the test delivery to succeed in the log',
          async () => {
            await log.getByRole('button', { name: 'Refresh' }).click();
            return delivered.first().getAttribute('data-status');
          },
          (s) => s === 'succeeded',
          30_000,
        );
        await hasText(delivered.first(), '204');
        assert(received.length === 1, `the receiver got ${received.length} requests`);
        const got = received[0]!;
        const sig = String(got.headers['atelier-signature']);
        const [, t, v1] = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(sig) ?? [];
        assert(t && v1, `bad signature header ${sig}`);
        assert(
          createHmac('sha256', secret).update(`${t}.${got.body}`).digest('hex') === v1,
          'the delivery is not signed with the secret shown',
        );
        const event = JSON.parse(got.body) as { id: string; type: string };
        assert(event.type === 'ping', `unexpected event ${got.body}`);
        await page.screenshot({ path: path.join(c.artifacts, '21-webhooks-log.png') });

        await delivered.first().getByRole('button', { name: 'Replay' }).click();
        await visible(page.getByText('Delivery queued again.'));
        await until(
          'the replay to arrive',
          async () => received.length,
          (n) => n >= 2,
          30_000,
        );
        const again = JSON.parse(received[1]!.body) as { id: string };
        assert(again.id === event.id, 'a replay carries the same event id');
        await until(
          'the replay in the log',
          async () => {
            await log.getByRole('button', { name: 'Refresh' }).click();
            return log.getByTestId('webhook-delivery').filter({ hasText: '(replay)' }).count();
          },
          (n) => n === 1,
          30_000,
        );
      },
    );

    await steps.run('webhooks: disable, then delete after confirming', async () => {
      const { page } = ctx();
      const panel = page.getByTestId('webhooks-panel');
      const row = panel.getByTestId('webhook-endpoint');
      await row.getByLabel('Enabled').uncheck();
      await until(
        'Send test to be disabled',
        () => row.getByRole('button', { name: 'Send test' }).isDisabled(),
        Boolean,
      );
      await row.getByRole('button', { name: 'Delete' }).click();
      const dialog = page.getByRole('dialog', { name: 'Delete webhook endpoint' });
      await visible(dialog.getByText(hookUrl));
      await page.keyboard.press('Escape'); // Esc keeps it
      await count(row, 1);
      await row.getByRole('button', { name: 'Delete' }).click();
      await dialog.getByRole('button', { name: 'Delete endpoint' }).click();
      await visible(panel.getByText('No endpoints yet.'));
      await page.getByRole('button', { name: 'Sign out' }).click();
      await visible(page.getByRole('heading', { name: 'Sign in' }));
    });
  } finally {
    receiver.closeAllConnections();
    await new Promise((r) => receiver.close(r));
  }
}
