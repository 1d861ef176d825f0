import { describe, expect, it } from 'vitest';
import {
  allowPermission,
  appCsp,
  canStoreSecrets,
  decideNavigation,
  deepLinkFromArgv,
  isAllowedExternal,
  isAppUrl,
  isTrustedSender,
  mainWindowOptions,
  parseDeepLink,
  resolveAppRequest,
  publisherNames,
  shouldCheckForUpdates,
  updateSignatureCheck,
} from './policy.ts';

describe('BrowserWindow options', () => {
  it('isolates and sandboxes the renderer with no Node access', () => {
    const o = mainWindowOptions('/app/preload.cjs');
    expect(o.webPreferences).toMatchObject({
      preload: '/app/preload.cjs',
      contextIsolation: true,
      sandbox: true,
      nodeIntegration: false,
      nodeIntegrationInWorker: false,
      nodeIntegrationInSubFrames: false,
      webSecurity: true,
      allowRunningInsecureContent: false,
      webviewTag: false,
      experimentalFeatures: false,
    });
    expect(o.webPreferences).not.toHaveProperty('enableRemoteModule');
  });
});

describe('CSP', () => {
  it('allows only the app, the configured API and its WebSocket, and image origins', () => {
    const csp = appCsp({ apiUrl: 'https://api.atelier.app/v1', imageOrigins: ['http://127.0.0.1:4569'] });
    const d = Object.fromEntries(csp.split('; ').map((p) => [p.split(' ')[0], p.split(' ').slice(1)]));
    expect(d['default-src']).toEqual(["'self'"]);
    expect(d['script-src']).toEqual(["'self'"]);
    expect(d['connect-src']).toEqual(["'self'", 'https://api.atelier.app', 'wss://api.atelier.app']);
    expect(d['img-src']).toEqual([
      "'self'",
      'data:',
      'blob:',
      'app:',
      'https://*.amazonaws.com',
      'http://127.0.0.1:4569',
    ]);
    expect(d['object-src']).toEqual(["'none'"]);
    expect(d['frame-ancestors']).toEqual(["'none'"]);
    expect(csp).not.toMatch(/unsafe-inline|unsafe-eval|\*(?!\.amazonaws)/);
    expect(appCsp({ apiUrl: 'http://127.0.0.1:8080' })).toContain(
      "connect-src 'self' http://127.0.0.1:8080 ws://127.0.0.1:8080;",
    );
    expect(appCsp({ apiUrl: null })).toContain("connect-src 'self';");
  });
});

describe('openExternal allow-list', () => {
  it.each([
    ['https://checkout.stripe.com/c/pay/cs_test_123', true],
    ['https://billing.stripe.com/p/session/abc', true],
    ['https://docs.atelier.app/guide', true],
    ['https://checkout.stripe.com.evil.example/c/pay', false],
    ['https://evil.example/?https://checkout.stripe.com', false],
    ['https://user:pw@checkout.stripe.com/', false],
    ['http://checkout.stripe.com/', false],
    ['https://checkout.stripe.com:8443/', false],
    ['javascript:alert(1)', false],
    ['JavaScript:alert(1)', false],
    ['file:///etc/passwd', false],
    ['data:text/html,<script>alert(1)</script>', false],
    ['not a url', false],
    ['', false],
  ])('%s → %s', (url, allowed) => {
    expect(isAllowedExternal(url)).toBe(allowed);
  });
});

describe('the local stack’s mailbox page (development only)', () => {
  const dev = ['http://127.0.0.1:8025'];
  it.each([
    ['http://127.0.0.1:8025/', true],
    ['http://127.0.0.1:8025/messages.json', true],
    ['http://127.0.0.1:8026/', false],
    ['http://user:pw@127.0.0.1:8025/', false],
    ['http://example.com:8025/', false],
  ])('%s → %s when the stack names it', (url, allowed) => {
    expect(isAllowedExternal(url, undefined, dev)).toBe(allowed);
  });
  it('is refused when no stack names it (a packaged app)', () => {
    expect(isAllowedExternal('http://127.0.0.1:8025/')).toBe(false);
    expect(isAllowedExternal('http://example.com/', undefined, ['http://example.com'])).toBe(false);
    expect(decideNavigation('http://127.0.0.1:8025/', undefined, dev)).toEqual({
      action: 'deny',
      openExternal: 'http://127.0.0.1:8025/',
    });
  });
});

describe('navigation and new windows', () => {
  it('denies every navigation and window.open, handing allow-listed links to the system browser', () => {
    expect(decideNavigation('https://checkout.stripe.com/c/pay/x')).toEqual({
      action: 'deny',
      openExternal: 'https://checkout.stripe.com/c/pay/x',
    });
    expect(decideNavigation('https://checkout.stripe.com.evil.example/')).toEqual({ action: 'deny' });
    expect(decideNavigation('javascript:alert(1)')).toEqual({ action: 'deny' });
    expect(decideNavigation('app://atelier/index.html')).toEqual({ action: 'deny' });
    expect(decideNavigation('file:///etc/passwd')).toEqual({ action: 'deny' });
  });
  it('recognises the app origin exactly', () => {
    expect(isAppUrl('app://atelier/index.html#/gallery')).toBe(true);
    expect(isAppUrl('app://atelier.evil/index.html')).toBe(false);
    expect(isAppUrl('https://atelier/')).toBe(false);
  });
  it('grants no permissions', () => {
    expect(allowPermission('media')).toBe(false);
    expect(allowPermission('notifications')).toBe(false);
  });
});

describe('IPC sender check', () => {
  const ok = { frameUrl: 'app://atelier/index.html', isTopFrame: true, isMainWindow: true };
  it('trusts only the main window top frame on app://atelier', () => {
    expect(isTrustedSender(ok)).toBe(true);
    expect(isTrustedSender({ ...ok, isTopFrame: false })).toBe(false);
    expect(isTrustedSender({ ...ok, isMainWindow: false })).toBe(false);
    expect(isTrustedSender({ ...ok, frameUrl: 'https://checkout.stripe.com/' })).toBe(false);
    expect(isTrustedSender({ ...ok, frameUrl: 'file:///app/index.html' })).toBe(false);
    expect(isTrustedSender({ ...ok, frameUrl: null })).toBe(false);
  });
});

describe('deep links', () => {
  it('parses the billing return and the auth callback', () => {
    expect(parseDeepLink('atelier://billing/return?status=success')).toEqual({
      kind: 'billing-return',
      status: 'success',
    });
    expect(parseDeepLink('atelier://billing/return/?status=cancel')).toEqual({
      kind: 'billing-return',
      status: 'cancel',
    });
    expect(parseDeepLink('atelier://auth/callback?code=abc-123&state=xyz')).toEqual({
      kind: 'auth-callback',
      code: 'abc-123',
      state: 'xyz',
    });
  });
  it.each([
    'atelier://billing/return?status=paid',
    'atelier://billing/return',
    'atelier://billing/other?status=success',
    'atelier://user:pw@billing/return?status=success',
    'atelier://auth/callback?code=<script>&state=x',
    'https://billing/return?status=success',
    'javascript:alert(1)',
    `atelier://billing/return?status=success&pad=${'x'.repeat(3000)}`,
    '',
  ])('refuses %s', (raw) => {
    expect(parseDeepLink(raw)).toBeNull();
  });
  it('refuses non-strings and finds the link in a second instance argv', () => {
    expect(parseDeepLink(42)).toBeNull();
    expect(deepLinkFromArgv(['/opt/Atelier/atelier', '--flag', 'atelier://billing/return?status=success'])).toBe(
      'atelier://billing/return?status=success',
    );
    expect(deepLinkFromArgv(['/opt/Atelier/atelier'])).toBeNull();
  });
});

describe('secret storage backend', () => {
  it('refuses basic_text and unavailable encryption, accepts real keyrings', () => {
    expect(canStoreSecrets({ encryptionAvailable: true, platform: 'linux', linuxBackend: 'basic_text' })).toBe(false);
    expect(canStoreSecrets({ encryptionAvailable: true, platform: 'linux', linuxBackend: 'unknown' })).toBe(false);
    expect(canStoreSecrets({ encryptionAvailable: true, platform: 'linux', linuxBackend: 'gnome_libsecret' })).toBe(
      true,
    );
    expect(canStoreSecrets({ encryptionAvailable: true, platform: 'linux', linuxBackend: 'kwallet6' })).toBe(true);
    expect(canStoreSecrets({ encryptionAvailable: false, platform: 'darwin', linuxBackend: null })).toBe(false);
    expect(canStoreSecrets({ encryptionAvailable: true, platform: 'win32', linuxBackend: null })).toBe(true);
  });
});

describe('auto-update opt-out', () => {
  it('checks only when packaged and enabled', () => {
    expect(shouldCheckForUpdates({ autoUpdate: true, isPackaged: true })).toBe(true);
    expect(shouldCheckForUpdates({ autoUpdate: false, isPackaged: true })).toBe(false);
    expect(shouldCheckForUpdates({ autoUpdate: true, isPackaged: false })).toBe(false);
  });
});

describe('app:// requests', () => {
  it.each([
    ['app://atelier/', { kind: 'asset', relPath: 'index.html' }],
    ['app://atelier/gallery', { kind: 'asset', relPath: 'index.html' }],
    ['app://atelier/assets/index-abc.js', { kind: 'asset', relPath: 'assets/index-abc.js' }],
    ['app://atelier/files/img_01JABCDEFGHJKMNPQRSTVW.png', { kind: 'file', name: 'img_01JABCDEFGHJKMNPQRSTVW.png' }],
    ['app://atelier/files/..%2Flibrary.db', { kind: 'not-found' }],
    // URL parsing resolves encoded dot segments first: what remains is inside dist/.
    ['app://atelier/assets/%2e%2e/%2e%2e/secret.txt', { kind: 'asset', relPath: 'secret.txt' }],
    ['app://atelier/assets/%252e%252e/x.txt', { kind: 'asset', relPath: 'assets/%2e%2e/x.txt' }],
    ['app://atelier/assets/..%5C..%5Csecret.txt', { kind: 'not-found' }],
    ['app://evil/index.html', { kind: 'not-found' }],
    ['https://atelier/index.html', { kind: 'not-found' }],
  ])('%s', (url, want) => {
    expect(resolveAppRequest(url)).toEqual(want);
  });
});

describe('update signatures', () => {
  // The shape electron-builder writes into resources/app-update.yml.
  const yml = (publisher: string) =>
    `provider: generic\nurl: https://downloads.atelier.app/desktop/latest\n${publisher}updaterCacheDirName: atelier-updater\n`;

  it('reads the publisher names electron-builder writes (list or scalar)', () => {
    expect(publisherNames(yml('publisherName:\n  - Atelier\n  - "Atelier Ltd"\n'))).toEqual(['Atelier', 'Atelier Ltd']);
    expect(publisherNames(yml("publisherName: 'Atelier'\n"))).toEqual(['Atelier']);
    expect(publisherNames(yml(''))).toEqual([]);
  });

  it('Windows updates only when the installer signature will be checked against a publisher', () => {
    expect(updateSignatureCheck({ platform: 'win32', appUpdateYml: yml('publisherName:\n  - Atelier\n') })).toEqual({
      ok: true,
    });
    const unsigned = updateSignatureCheck({ platform: 'win32', appUpdateYml: yml('') });
    expect(unsigned.ok).toBe(false);
    expect(!unsigned.ok && unsigned.reason).toMatch(/no publisher/);
    expect(updateSignatureCheck({ platform: 'win32', appUpdateYml: null }).ok).toBe(false);
  });

  it('macOS relies on Squirrel.Mac’s signature check; Linux has none, so no automatic updates there', () => {
    expect(updateSignatureCheck({ platform: 'darwin', appUpdateYml: null })).toEqual({ ok: true });
    const linux = updateSignatureCheck({ platform: 'linux', appUpdateYml: yml('') });
    expect(linux.ok).toBe(false);
    expect(!linux.ok && linux.reason).toMatch(/not signature-checked/);
  });
});
