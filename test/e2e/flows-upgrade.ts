// Full storage → Upgrade → the picture syncs, in the real UI (issue 13). The shared stack runs
// without billing (decision 0032), so this flow starts a second API process of the same stack
// (same Postgres, cognito-local and s3rver) with Stripe pointed at the test peer, and a browser
// host whose stack file names that API. A new user with nearly full storage makes a picture: the
// shell says "Cloud storage full" before any byte moves and offers Upgrade; Upgrade asks the API
// for Checkout (seen by the peer); the test then plays Stripe, sending the signed webhook events
// of a completed subscription to that API; the app shows Pro and the picture uploads.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import pg from 'pg';
import type { Page } from 'playwright-core';
import { PLANS, newId } from '@atelier/common';
import { LOCAL_S3_CREDENTIALS } from '../../cloud/src/storage/local-s3.ts';
import { signUpConfirmed } from '../../cloud/src/stack/cognito.ts';
import { StackFile } from '../../cloud/src/stack/stack-file.ts';
import {
  PEER_SECRET_KEY,
  StripePeer,
  checkoutSessionObject,
  eventObject,
  invoiceObject,
  signWebhook,
} from '../../cloud/test/support/stripe-peer.ts';
import { assert, count, exactText, hasAttr, hasText, until, visible } from './expect.ts';
import { nav, shot, signIn, type FlowContext } from './flows.ts';
import { freePort, startChild, type Child, type Steps } from './harness.ts';

const WEBHOOK_SECRET = 'whsec_atelier_e2e_upgrade';
const PRO_PRICE = 'price_atelier_e2e_pro';
const SYNC_TIMEOUT = 60_000;
const DAY = 86_400_000;
const PROMPT = 'a purple star on a white background';

const indicator = (page: Page) => page.getByTestId('sync-indicator');
const tile = (page: Page) =>
  page.getByRole('listbox', { name: 'Images' }).getByRole('option', { name: new RegExp(`^${PROMPT}`) });

interface S3Info {
  endpoint: string;
  bucket: string;
  region: string;
}

export async function upgradeFlow(steps: Steps, ctx: () => FlowContext): Promise<void> {
  const children: Child[] = [];
  const dirs: string[] = [];
  let peer: StripePeer | null = null;
  let db: pg.Client | null = null;
  let page: Page | null = null;
  let apiUrl = '';
  let stack: StackFile | null = null;
  let s3: S3Info | null = null;
  let sub = '';
  let filler = '';
  const need = <T>(v: T | null, what: string): T => {
    if (v === null) throw new Error(`${what} is not up`);
    return v;
  };
  const tmp = (prefix: string) => {
    const d = mkdtempSync(path.join(os.tmpdir(), prefix));
    dirs.push(d);
    return d;
  };
  /** What the cloud holds for the user: upload reservations (besides the filler), image rows, S3 keys. */
  const held = async () => {
    const { rows } = await need(db, 'Postgres').query<{ uploads: number; images: number }>(
      `SELECT (SELECT count(*)::int FROM uploads WHERE user_id = $1 AND id <> $2) AS uploads,
              (SELECT count(*)::int FROM images WHERE user_id = $1) AS images`,
      [sub, filler],
    );
    const info = need(s3, 'S3');
    const client = new S3Client({
      endpoint: info.endpoint,
      region: info.region,
      forcePathStyle: true,
      credentials: LOCAL_S3_CREDENTIALS,
    });
    try {
      const listed = await client.send(new ListObjectsV2Command({ Bucket: info.bucket, Prefix: `users/${sub}/` }));
      return { ...rows[0]!, keys: (listed.Contents ?? []).map((o) => o.Key ?? '') };
    } finally {
      client.destroy();
    }
  };
  /** Delivers one signed Stripe event to the billing API, as Stripe would; returns what it did. */
  const deliver = async (type: string, object: Record<string, unknown>): Promise<string> => {
    const { payload, headers } = signWebhook(eventObject(type, object), WEBHOOK_SECRET);
    const res = await fetch(new URL('/v1/webhooks/stripe', apiUrl), { method: 'POST', headers, body: payload });
    const body = (await res.json()) as { outcome?: string };
    assert(res.status === 200, `the webhook ${type} was answered ${res.status} ${JSON.stringify(body)}`);
    return body.outcome ?? '';
  };

  try {
    await steps.run('upgrade: a billing API on the same stack and a profile on it; a new user signs in', async () => {
      const c = ctx();
      const stackFile = path.join(c.repo, '.atelier/stack.json');
      stack = StackFile.parse(JSON.parse(readFileSync(stackFile, 'utf8')));
      s3 = (stack as { s3?: S3Info }).s3 ?? null;
      if (!s3) throw new Error('the stack file names no S3 endpoint');
      peer = await StripePeer.start();
      const port = await freePort();
      apiUrl = `http://127.0.0.1:${port}`;
      // The same services as the stack's own API, plus billing: only this process talks to Stripe.
      const apiEnv = {
        LOG_LEVEL: 'info',
        ATELIER_API_PORT: String(port),
        DATABASE_URL: stack.databaseUrl,
        COGNITO_REGION: stack.cognito.region,
        COGNITO_ENDPOINT: stack.cognito.endpoint,
        COGNITO_USER_POOL_ID: stack.cognito.userPoolId,
        COGNITO_CLIENT_ID: stack.cognito.clientId,
        COGNITO_ISSUER: stack.cognito.issuer,
        S3_ENDPOINT: s3.endpoint,
        S3_BUCKET: s3.bucket,
        S3_REGION: s3.region,
        S3_FORCE_PATH_STYLE: 'true',
        S3_ACCESS_KEY_ID: LOCAL_S3_CREDENTIALS.accessKeyId,
        S3_SECRET_ACCESS_KEY: LOCAL_S3_CREDENTIALS.secretAccessKey,
        // The stack's API runs the periodic work; a second runner would only compete for it.
        PERIODIC_WORK: 'off',
        WEBHOOKS_ALLOW_PRIVATE_TARGETS: 'true',
        STRIPE_SECRET_KEY: PEER_SECRET_KEY,
        STRIPE_WEBHOOK_SECRET: WEBHOOK_SECRET,
        STRIPE_PRICE_PRO: PRO_PRICE,
        STRIPE_API_HOST: '127.0.0.1',
        STRIPE_API_PORT: String(peer.port),
        STRIPE_API_PROTOCOL: 'http',
      };
      const billingStackFile = path.join(tmp('atelier-e2e-upgrade-stack-'), 'stack.json');
      writeFileSync(billingStackFile, JSON.stringify({ ...JSON.parse(readFileSync(stackFile, 'utf8')), apiUrl }));
      const password = 'Atelier2e2e-upgrade';
      const email = `e2e-upgrade-${Date.now().toString(36)}@example.com`;
      // The API, the host and the account come up side by side (the host waits for its cloud).
      const [api, host, user] = await Promise.all([
        startChild('api-billing', path.join(c.repo, 'cloud/src/server.ts'), [], {
          cwd: c.repo,
          env: apiEnv,
          ready: /"msg":"api listening"/,
          timeoutMs: 60_000,
        }),
        startChild(
          'host-upgrade',
          path.join(c.repo, 'src-main/host/main.ts'),
          ['--user-data', tmp('atelier-e2e-upgrade-profile-'), '--stack', billingStackFile],
          { cwd: c.repo, ready: /^(?:OPEN|READY)\s+(http:\/\/127\.0\.0\.1:\d+\/\S*)/, timeoutMs: 180_000 },
        ),
        signUpConfirmed(stack.cognito.endpoint, stack.cognito, email, password),
      ]);
      children.push(api.child, host.child);
      sub = user.sub;
      db = new pg.Client({ connectionString: stack.databaseUrl });
      await db.connect();
      // A page of the suite's browser, on this host's own origin (its own storage).
      page = await c.page.context().newPage();
      await page.setViewportSize({ width: 1280, height: 800 });
      page.setDefaultTimeout(30_000);
      await page.goto(host.match[1]!);
      await signIn(page, email, password);
      await exactText(page.getByTestId('plan-badge'), 'Free');
      await hasText(indicator(page), 'Gallery in sync', SYNC_TIMEOUT);
    });

    await steps.run(
      'upgrade: storage nearly full, a new picture → "Cloud storage full" and Upgrade, nothing sent',
      async () => {
        const p = need(page, 'the profile');
        // Another device of this user holds a reservation for a picture of nearly the plan's size
        // (an upload under way counts toward storage): 200 bytes are left, too few for any PNG.
        filler = newId('img');
        await need(db, 'Postgres').query(
          `INSERT INTO uploads (id, user_id, sha256, size, thumb_sha256, thumb_size, thumb_mime, width, height,
                              metadata, expires_at)
         VALUES ($1, $2, $3, $4, $3, 100, 'image/png', 8192, 8192, '{}', now() + interval '1 hour')`,
          [filler, sub, 'e'.repeat(64), PLANS.free.storageBytes - 300],
        );
        await nav(p, 'Generate');
        await p.getByLabel('Prompt', { exact: true }).fill(PROMPT);
        await p.getByLabel('Steps', { exact: true }).fill('2');
        await p.getByRole('radio', { name: 'This computer' }).check();
        await p.getByRole('button', { name: 'Generate', exact: true }).click();
        await visible(p.getByRole('listitem', { name: `Done: ${PROMPT}` }).first(), 120_000);
        await nav(p, 'Gallery');
        await visible(tile(p));
        await hasText(indicator(p), 'Cloud storage full', SYNC_TIMEOUT);
        await hasText(indicator(p), /1 image does not fit in your cloud storage/);
        // Billing exists on this server: the way out is a button, not "not available".
        await visible(indicator(p).getByRole('button', { name: 'Upgrade' }));
        await count(indicator(p).getByText('Upgrades are not available on this server.'), 0);
        // Decided before any byte moved: no reservation, no image row, no object for the picture.
        const before = await held();
        assert(
          before.uploads === 0 && before.images === 0 && before.keys.length === 0,
          `the cloud holds ${JSON.stringify(before)} for a picture that does not fit`,
        );
        // Its badge says it stays on this computer, not that it is uploading.
        await hasAttr(tile(p).locator('[data-cloud]'), 'data-cloud', 'local', SYNC_TIMEOUT);
        await shot({ ...ctx(), page: p }, 'upgrade-storage-full');
      },
    );

    let customer = '';
    await steps.run('upgrade: Upgrade asks the API for Checkout for this user; the app links to it', async () => {
      const p = need(page, 'the profile');
      const stripe = need(peer, 'the Stripe peer');
      await indicator(p).getByRole('button', { name: 'Upgrade' }).click();
      await visible(p.getByText('Checkout opened in your browser. Come back here when you are done.'));
      const link = indicator(p).getByRole('link', { name: 'Open checkout' });
      await visible(link);
      // The peer saw a customer made for this user and a subscription Checkout for that customer.
      const customers = [...stripe.customers.values()].filter(
        (x) => (x.metadata as Record<string, string>).userId === sub,
      );
      assert(customers.length === 1, `the peer holds ${customers.length} customers for this user`);
      customer = customers[0]!.id as string;
      const created = stripe.sent('POST', '/v1/checkout/sessions');
      assert(created.length === 1, `${created.length} Checkout sessions were created`);
      const form = created[0]!.form;
      assert(
        form.customer === customer &&
          form.client_reference_id === sub &&
          form.mode === 'subscription' &&
          form['line_items[0][price]'] === PRO_PRICE,
        `the Checkout session was created with ${JSON.stringify(form)}`,
      );
      const session = [...stripe.checkoutSessions.values()][0]!;
      assert(
        (await link.getAttribute('href')) === session.url,
        `the link goes to ${await link.getAttribute('href')}, not the session's ${String(session.url)}`,
      );
      await shot({ ...ctx(), page: p }, 'upgrade-checkout-opened');
    });

    await steps.run('upgrade: Stripe completes the subscription → Pro, the Pro limit, the picture syncs', async () => {
      const p = need(page, 'the profile');
      const stripe = need(peer, 'the Stripe peer');
      // The test plays Stripe after a paid Checkout: the subscription exists (the API re-reads it
      // from the peer), and its events arrive signed, in the order Stripe sends them.
      const now = new Date();
      const subscription = stripe.putSubscription({
        customer,
        status: 'active',
        priceId: PRO_PRICE,
        periodStart: now,
        periodEnd: new Date(now.getTime() + 30 * DAY),
        metadata: { userId: sub },
      });
      const outcomes = [
        await deliver('customer.subscription.created', subscription),
        await deliver(
          'invoice.paid',
          invoiceObject({ customer, subscription: subscription.id as string, status: 'paid' }),
        ),
        await deliver(
          'checkout.session.completed',
          checkoutSessionObject({ customer, subscription: subscription.id as string, clientReferenceId: sub }),
        ),
      ];
      assert(outcomes[0] === 'applied', `the webhooks did ${outcomes.join(', ')}`);
      // The app hears plan.changed: Pro on the Account screen, the Pro storage limit in Settings.
      await nav(p, 'Account');
      await exactText(p.getByTestId('plan-badge'), 'Pro', SYNC_TIMEOUT);
      // The waiting picture uploads, without a click.
      await hasText(indicator(p), 'Gallery in sync', SYNC_TIMEOUT);
      await count(indicator(p).getByText('Cloud storage full'), 0);
      await count(indicator(p).getByRole('button', { name: 'Upgrade' }), 0);
      await count(indicator(p).getByRole('link', { name: 'Open checkout' }), 0);
      await nav(p, 'Gallery');
      await hasAttr(tile(p).locator('[data-cloud]'), 'data-cloud', 'cloud', SYNC_TIMEOUT);
      await nav(p, 'Settings');
      const panel = p.getByTestId('sync-panel');
      await hasText(panel, /Cloud storage: 2(\.0)? GB of 100 GB/);
      await count(panel.getByText(/not fit in your cloud storage/), 0);
      await shot({ ...ctx(), page: p }, 'upgrade-synced-settings', panel);
      // In the cloud: the picture's row and its bytes (picture and thumbnail), this user's only.
      const after = await until('the picture in Postgres and S3', held, (h) => h.images === 1 && h.keys.length >= 2);
      const { rows } = await need(db, 'Postgres').query<{ plan: string; stripe_customer_id: string }>(
        'SELECT plan, stripe_customer_id FROM subscriptions WHERE user_id = $1',
        [sub],
      );
      assert(
        rows[0]?.plan === 'pro' && rows[0].stripe_customer_id === customer,
        `the subscription row is ${JSON.stringify(rows)}; the cloud holds ${JSON.stringify(after)}`,
      );
      await nav(p, 'Gallery');
      await shot({ ...ctx(), page: p }, 'upgrade-synced');
    });
  } finally {
    await (page as Page | null)?.close().catch(() => undefined);
    if (filler)
      await (db as pg.Client | null)?.query('DELETE FROM uploads WHERE id = $1', [filler]).catch(() => undefined);
    await (db as pg.Client | null)?.end().catch(() => undefined);
    for (const ch of children.reverse()) await ch.stop();
    await (peer as StripePeer | null)?.close();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  }
}
