import { AppError, checkPassword, PLANS } from '@atelier/common';
import { useState, type FormEvent, type ReactNode } from 'react';
import { ApiKeysPanel } from '../components/ApiKeysPanel.tsx';
import { Modal } from '../components/Modal.tsx';
import { ProgressBar } from '../components/ProgressBar.tsx';
import { UsageMeter } from '../components/UsageMeter.tsx';
import { WebhooksPanel } from '../components/WebhooksPanel.tsx';
import { UsagePanel } from '../components/UsagePanel.tsx';
import { BILLING_OFF } from '../lib/billing.ts';
import { formatBytes, planName } from '../lib/format.ts';
import { userMessageOf } from '../lib/field-errors.ts';
import { useS, useStores } from '../stores/index.ts';

/** Development stack only: where the codes "we sent" really arrive. */
function MailboxLink() {
  const { settings } = useStores();
  const url = useS(settings, (s) => s.info?.mailboxUrl ?? null);
  if (!url) return null;
  return (
    <p className="callout small" data-testid="mailbox-link">
      Development server: no email is sent. The code is in the{' '}
      <a href={url} target="_blank" rel="noreferrer noopener">
        local mailbox
      </a>{' '}
      and in the terminal that runs the stack.
    </p>
  );
}

function PasswordRules({ password }: { password: string }) {
  const { rules } = checkPassword(password);
  return (
    <ul className="password-rules" aria-live="polite" aria-label="Password requirements">
      {rules.map((r) => (
        <li key={r.id} className={r.met ? 'rule-met' : 'rule-unmet'}>
          <span aria-hidden="true">{r.met ? '✓' : '○'}</span> {r.label}
          <span className="sr-only">{r.met ? ' (done)' : ' (missing)'}</span>
        </li>
      ))}
    </ul>
  );
}

function FormShell({
  title,
  onSubmit,
  error,
  info,
  children,
  footer,
}: {
  title: string;
  onSubmit: () => Promise<void>;
  error: string | null;
  info?: ReactNode;
  children: ReactNode;
  footer?: ReactNode;
}) {
  return (
    <form
      className="panel auth-form"
      aria-label={title}
      noValidate
      onSubmit={(e: FormEvent) => {
        e.preventDefault();
        void onSubmit();
      }}
    >
      <h1 className="screen-title">{title}</h1>
      {info && <p className="muted">{info}</p>}
      {children}
      {error && (
        <p className="error-text" role="alert">
          {error}
        </p>
      )}
      {footer && <div className="auth-footer">{footer}</div>}
    </form>
  );
}

function SignedOut() {
  const { account, app } = useStores();
  const view = useS(account, (s) => s.view);
  const storedEmail = useS(account, (s) => s.email);
  const busy = useS(account, (s) => s.busy);
  const [email, setEmail] = useState(storedEmail);
  const [password, setPassword] = useState('');
  const [code, setCode] = useState('');
  const [error, setError] = useState<string | null>(null);
  const a = account.getState();
  const go = (v: typeof view) => {
    setError(null);
    setPassword('');
    setCode('');
    a.setView(v);
  };
  const attempt = async (fn: () => Promise<void>) => {
    setError(null);
    try {
      await fn();
    } catch (e) {
      if (AppError.is(e, 'AUTH_NOT_CONFIRMED')) {
        a.setEmail(email);
        a.setView('confirm');
      }
      setError(userMessageOf(e));
    }
  };
  const emailField = (
    <div className="field">
      <label htmlFor="acct-email">Email</label>
      <input
        id="acct-email"
        type="email"
        autoComplete="email"
        value={email}
        onChange={(e) => setEmail(e.target.value)}
        required
      />
    </div>
  );
  const passwordField = (label: string, autoComplete: string, rules: boolean) => (
    <div className="field">
      <label htmlFor="acct-password">{label}</label>
      <input
        id="acct-password"
        type="password"
        autoComplete={autoComplete}
        value={password}
        onChange={(e) => setPassword(e.target.value)}
        required
      />
      {rules && <PasswordRules password={password} />}
    </div>
  );
  const codeField = (
    <div className="field">
      <label htmlFor="acct-code">Verification code</label>
      <input
        id="acct-code"
        inputMode="numeric"
        autoComplete="one-time-code"
        value={code}
        onChange={(e) => setCode(e.target.value)}
        required
      />
    </div>
  );
  const submitBtn = (label: string) => (
    <button type="submit" className="btn btn-primary" disabled={busy}>
      {busy ? 'Please wait…' : label}
    </button>
  );

  switch (view) {
    case 'signUp':
      return (
        <FormShell
          title="Create your account"
          info="An account lets you run in Atelier Cloud and sync your gallery. Free includes 100 cloud images a month."
          error={error}
          onSubmit={() =>
            attempt(async () => {
              if (!checkPassword(password).ok) throw new AppError('AUTH_WEAK_PASSWORD');
              await a.signUp(email, password);
            })
          }
          footer={
            <button type="button" className="btn btn-link" onClick={() => go('signIn')}>
              I already have an account
            </button>
          }
        >
          <MailboxLink />
          {emailField}
          {passwordField('Password', 'new-password', true)}
          {submitBtn('Create account')}
        </FormShell>
      );
    case 'confirm':
      return (
        <FormShell
          title="Confirm your email"
          info={<>We sent a code to {storedEmail || email}. Enter it to finish creating your account.</>}
          error={error}
          onSubmit={() =>
            attempt(async () => {
              await a.confirm(storedEmail || email, code);
              app.getState().toast({ kind: 'success', message: 'Email confirmed. Sign in to continue.' });
            })
          }
          footer={
            <>
              <button
                type="button"
                className="btn btn-link"
                onClick={() =>
                  void attempt(async () => {
                    await a.resendCode(storedEmail || email);
                    app.getState().toast({ kind: 'info', message: 'A new code is on its way.' });
                  })
                }
              >
                Send a new code
              </button>
              <button type="button" className="btn btn-link" onClick={() => go('signIn')}>
                Back to sign in
              </button>
            </>
          }
        >
          <MailboxLink />
          {codeField}
          {submitBtn('Confirm')}
        </FormShell>
      );
    case 'forgot':
      return (
        <FormShell
          title="Reset your password"
          info="Enter your email and we will send you a code to set a new password."
          error={error}
          onSubmit={() => attempt(() => a.forgot(email))}
          footer={
            <button type="button" className="btn btn-link" onClick={() => go('signIn')}>
              Back to sign in
            </button>
          }
        >
          {emailField}
          {submitBtn('Send code')}
        </FormShell>
      );
    case 'reset':
      return (
        <FormShell
          title="Choose a new password"
          info={<>Enter the code we sent to {storedEmail || email} and your new password.</>}
          error={error}
          onSubmit={() =>
            attempt(async () => {
              if (!checkPassword(password).ok) throw new AppError('AUTH_WEAK_PASSWORD');
              await a.reset(storedEmail || email, code, password);
              app.getState().toast({ kind: 'success', message: 'Password changed. Sign in with your new password.' });
            })
          }
          footer={
            <button type="button" className="btn btn-link" onClick={() => go('signIn')}>
              Back to sign in
            </button>
          }
        >
          <MailboxLink />
          {codeField}
          {passwordField('New password', 'new-password', true)}
          {submitBtn('Set new password')}
        </FormShell>
      );
    default:
      return (
        <FormShell
          title="Sign in"
          info="Sign in to run in Atelier Cloud and sync your gallery across devices."
          error={error}
          onSubmit={() => attempt(() => a.signIn(email, password))}
          footer={
            <>
              <button type="button" className="btn btn-link" onClick={() => go('forgot')}>
                Forgot password?
              </button>
              <button type="button" className="btn btn-link" onClick={() => go('signUp')}>
                Create an account
              </button>
            </>
          }
        >
          {emailField}
          {passwordField('Password', 'current-password', false)}
          {submitBtn('Sign in')}
        </FormShell>
      );
  }
}

export function useBilling() {
  const { account, app } = useStores();
  const [url, setUrl] = useState<string | null>(null);
  const run = async (kind: 'upgrade' | 'manage') => {
    try {
      const u = kind === 'upgrade' ? await account.getState().upgrade() : await account.getState().manage();
      setUrl(u);
      app.getState().toast({
        kind: 'info',
        message:
          kind === 'upgrade'
            ? 'Checkout opened in your browser. Come back here when you are done.'
            : 'Subscription settings opened in your browser.',
      });
    } catch (e) {
      app.getState().reportError(e);
    }
  };
  return { url, run };
}

/** "Export my data": the cloud builds a zip of every cloud image and its metadata; it lands in the exports folder. */
function ExportData() {
  const { account } = useStores();
  const exp = useS(account, (s) => s.exportState);
  const running = exp?.phase === 'preparing' || exp?.phase === 'downloading';
  return (
    <div data-testid="export-data">
      <p>Download a zip of your cloud images with their prompts and settings, and your account details.</p>
      <button type="button" className="btn" disabled={running} onClick={() => void account.getState().exportData()}>
        {running ? 'Exporting…' : 'Export my data'}
      </button>
      {exp?.phase === 'preparing' && (
        <p role="status" className="muted small">
          Preparing your export in the cloud…
        </p>
      )}
      {exp?.phase === 'downloading' && (
        <div role="status">
          <ProgressBar
            step={exp.receivedBytes}
            total={exp.totalBytes ?? 0}
            label="Export download"
            text={`${formatBytes(exp.receivedBytes)} of ${exp.totalBytes === null ? '…' : formatBytes(exp.totalBytes)}`}
          />
          <p className="muted small">
            Downloading {formatBytes(exp.receivedBytes)}
            {exp.totalBytes !== null && ` of ${formatBytes(exp.totalBytes)}`}
          </p>
        </div>
      )}
      {exp?.phase === 'saved' && (
        <p role="status" className="callout small">
          Saved {exp.images} image{exp.images === 1 ? '' : 's'} ({formatBytes(exp.bytes)}) to{' '}
          <code data-testid="export-path">{exp.path}</code>
        </p>
      )}
      {exp?.phase === 'failed' && (
        <p role="alert" className="error-text">
          The export did not finish: {exp.message}
        </p>
      )}
    </div>
  );
}

/**
 * "Delete account": the confirmation says what goes and what stays, and asks for the account's
 * email (typed, so nobody deletes by a stray click) and password (the cloud checks it again).
 */
function DeleteAccount({ email }: { email: string | null }) {
  const { account, app } = useStores();
  const busy = useS(account, (s) => s.busy);
  const [open, setOpen] = useState(false);
  const [typed, setTyped] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState<string | null>(null);
  const matches = email !== null && typed.trim().toLowerCase() === email.toLowerCase();
  const close = () => {
    setOpen(false);
    setTyped('');
    setPassword('');
    setError(null);
  };
  const submit = async () => {
    if (!matches || !password) return;
    setError(null);
    try {
      await account.getState().deleteAccount(typed.trim(), password);
      close();
      app.getState().toast({
        kind: 'info',
        message: 'Your cloud account is being deleted. You have been signed out. Images on this computer stay.',
      });
    } catch (e) {
      setError(userMessageOf(e));
    }
  };
  return (
    <>
      <p>Delete your Atelier Cloud account and everything stored with it.</p>
      <button type="button" className="btn btn-danger" onClick={() => setOpen(true)}>
        Delete account
      </button>
      <Modal open={open} onClose={close} label="Delete account">
        <form
          className="modal-body"
          noValidate
          onSubmit={(e: FormEvent) => {
            e.preventDefault();
            void submit();
          }}
        >
          <h2>Delete your cloud account?</h2>
          <p>This cannot be undone. Deleted for good:</p>
          <ul>
            <li>your sign-in ({email})</li>
            <li>every image, board and generation in the cloud</li>
            <li>your subscription, canceled now without a refund for the rest of the period</li>
          </ul>
          <p className="muted small">
            Queued cloud generations are canceled and not charged. Images on this computer stay. Usage counts are kept
            without your name for our accounting. Export your data first if you want a copy.
          </p>
          <div className="field">
            <label htmlFor="delete-email">Type your email ({email}) to confirm</label>
            <input
              id="delete-email"
              type="email"
              autoComplete="off"
              data-autofocus
              value={typed}
              onChange={(e) => setTyped(e.target.value)}
            />
          </div>
          <div className="field">
            <label htmlFor="delete-password">Password</label>
            <input
              id="delete-password"
              type="password"
              autoComplete="current-password"
              value={password}
              onChange={(e) => setPassword(e.target.value)}
            />
          </div>
          {error && (
            <p className="error-text" role="alert">
              {error}
            </p>
          )}
          <div className="row end">
            <button type="button" className="btn" onClick={close}>
              Cancel
            </button>
            <button type="submit" className="btn btn-danger" disabled={!matches || !password || busy}>
              {busy ? 'Deleting…' : 'Delete my account'}
            </button>
          </div>
        </form>
      </Modal>
    </>
  );
}

function SignedIn() {
  const { account } = useStores();
  const state = useS(account, (s) => s.state)!;
  const busy = useS(account, (s) => s.busy);
  const { url, run } = useBilling();
  const plan = state.plan;
  const billing = state.billing;
  const billingOff = billing !== null && !billing.available;
  return (
    <div className="panel account">
      <h1 className="screen-title">Account</h1>
      <div className="account-head">
        <div>
          <div className="muted small">Signed in as</div>
          <div className="account-email">{state.email}</div>
        </div>
        <span className={`plan-badge plan-${plan ?? 'none'}`} data-testid="plan-badge">
          {planName(plan)}
        </span>
      </div>
      <section aria-labelledby="usage-title" className="account-section">
        <h2 id="usage-title">Cloud usage</h2>
        {state.usage ? (
          <UsageMeter usage={state.usage} />
        ) : (
          <p className="muted">Usage is not available while offline.</p>
        )}
        <UsagePanel />
        {state.usage && state.usage.used >= state.usage.limit && (
          <p className="callout callout-warning" role="alert">
            You have used all your cloud images for this period.{' '}
            {billingOff
              ? 'Run on this computer until the period resets.'
              : 'Upgrade to keep generating in the cloud, or run on this computer.'}
          </p>
        )}
      </section>
      <section aria-labelledby="plan-title" className="account-section">
        <h2 id="plan-title">Plan</h2>
        {plan !== 'pro' ? (
          <>
            <p>
              Pro: {PLANS.pro.monthlyImages.toLocaleString()} cloud images a month, priority in the queue, batches up to{' '}
              {PLANS.pro.maxCount}, up to {PLANS.pro.maxResolution}px — ${(PLANS.pro.priceCents / 100).toFixed(2)}
              /month.
            </p>
            {billingOff ? (
              <p className="muted" data-testid="billing-off">
                {BILLING_OFF}
              </p>
            ) : (
              <button type="button" className="btn btn-primary" disabled={busy} onClick={() => void run('upgrade')}>
                Upgrade
              </button>
            )}
          </>
        ) : (
          <p>You are on Pro. Thank you!</p>
        )}
        {/* Only someone with a subscription has one to manage; while unknown (offline) Pro users keep the button. */}
        {!billingOff && (billing?.hasSubscription ?? plan === 'pro') && (
          <button type="button" className="btn" disabled={busy} onClick={() => void run('manage')}>
            Manage subscription
          </button>
        )}
        {url && (
          <p className="muted small">
            If your browser did not open,{' '}
            <a href={url} target="_blank" rel="noreferrer noopener">
              open the page here
            </a>
            .
          </p>
        )}
      </section>
      <ApiKeysPanel />
      <section aria-labelledby="data-title" className="account-section">
        <h2 id="data-title">Your data</h2>
        <ExportData />
        <DeleteAccount email={state.email} />
      </section>
      <WebhooksPanel />
      <div className="account-section">
        <button
          type="button"
          className="btn"
          disabled={busy}
          onClick={() =>
            void account
              .getState()
              .signOut()
              .catch(() => undefined)
          }
        >
          Sign out
        </button>
      </div>
    </div>
  );
}

export function AccountScreen() {
  const { account } = useStores();
  const state = useS(account, (s) => s.state);
  if (!state) return <p role="status">Loading…</p>;
  return state.signedIn ? <SignedIn /> : <SignedOut />;
}
