/**
 * The Electron shell's security policy as pure functions (this file imports nothing from
 * electron, so plain Node tests can assert every rule): the BrowserWindow's webPreferences, the
 * app:// CSP, navigation and window.open decisions, the openExternal allow-list, the deep-link
 * parser, and the IPC sender check.
 */
import { z } from 'zod';
import { buildCsp, wsOriginOf } from '../services/csp.ts';

export const APP_SCHEME = 'app';
export const APP_HOST = 'atelier';
/** The origin the renderer runs at: app://atelier. */
export const APP_ORIGIN = `${APP_SCHEME}://${APP_HOST}`;
export const DEEP_LINK_SCHEME = 'atelier';

/** webPreferences for the one main window. Every flag is the secure choice, spelled out. */
export function mainWindowOptions(preloadPath: string) {
  return {
    width: 1280,
    height: 840,
    minWidth: 900,
    minHeight: 600,
    show: false,
    backgroundColor: '#111318',
    webPreferences: {
      preload: preloadPath,
      contextIsolation: true,
      sandbox: true,
      nodeIntegration: false,
      nodeIntegrationInWorker: false,
      nodeIntegrationInSubFrames: false,
      webSecurity: true,
      allowRunningInsecureContent: false,
      webviewTag: false,
      experimentalFeatures: false,
      enableBlinkFeatures: '',
      navigateOnDragDrop: false,
      spellcheck: true,
      safeDialogs: true,
    },
  } as const;
}

export interface AppCspConfig {
  /** The cloud API base URL (its origin and the matching ws/wss origin are allowed). */
  apiUrl: string | null;
  /** Where presigned image URLs point (S3 or s3rver origins). */
  imageOrigins?: string[];
}

/** The CSP served with every app:// document. */
export function appCsp(cfg: AppCspConfig): string {
  const connect = cfg.apiUrl ? [cfg.apiUrl, wsOriginOf(cfg.apiUrl)] : [];
  return buildCsp({ connect, img: [`${APP_SCHEME}:`, 'https://*.amazonaws.com', ...(cfg.imageOrigins ?? [])] });
}

/** Sites the app may open in the system browser: exact origins only (no suffix or prefix matching). */
export const EXTERNAL_ALLOW_LIST: readonly string[] = [
  'https://checkout.stripe.com',
  'https://billing.stripe.com',
  'https://docs.atelier.app',
];

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);

/**
 * Whether `shell.openExternal(url)` may be called: https, no credentials, an allow-listed origin.
 * `devOrigins`: loopback http(s) origins of the local development stack (its mailbox page), given
 * only by an unpackaged app that found `.atelier/stack.json`; anything not on loopback is refused.
 */
export function isAllowedExternal(
  url: string,
  allowList: readonly string[] = EXTERNAL_ALLOW_LIST,
  devOrigins: readonly string[] = [],
): boolean {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return false;
  }
  if (u.username || u.password) return false;
  if ((u.protocol === 'http:' || u.protocol === 'https:') && LOOPBACK.has(u.hostname) && devOrigins.includes(u.origin))
    return true;
  if (u.protocol !== 'https:') return false;
  return allowList.includes(u.origin);
}

export type NavigationDecision = { action: 'deny' } | { action: 'deny'; openExternal: string };

/**
 * will-navigate and setWindowOpenHandler: the app is a single page at app://atelier and never
 * navigates its window; window.open is always denied, and an allow-listed https link is handed
 * to the system browser instead.
 */
export function decideNavigation(
  url: string,
  allowList: readonly string[] = EXTERNAL_ALLOW_LIST,
  devOrigins: readonly string[] = [],
): NavigationDecision {
  return isAllowedExternal(url, allowList, devOrigins) ? { action: 'deny', openExternal: url } : { action: 'deny' };
}

/** In-page navigation within the app (hash or path changes on app://atelier) is allowed; anything else is not. */
export function isAppUrl(url: string): boolean {
  try {
    const u = new URL(url);
    return u.protocol === `${APP_SCHEME}:` && u.host === APP_HOST;
  } catch {
    return false;
  }
}

const DeepLink = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('billing-return'), status: z.enum(['success', 'cancel']) }),
  z.object({
    kind: z.literal('auth-callback'),
    code: z.string().regex(/^[A-Za-z0-9._~-]{1,512}$/),
    state: z.string().regex(/^[A-Za-z0-9._~-]{1,512}$/),
  }),
]);
export type DeepLink = z.infer<typeof DeepLink>;

/**
 * Parses an atelier:// URL from the OS (argv on Windows/Linux, open-url on macOS). It is untrusted
 * input from any web page or program: only the two known shapes are accepted, everything else is null.
 */
export function parseDeepLink(raw: unknown): DeepLink | null {
  if (typeof raw !== 'string' || raw.length > 2048) return null;
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    return null;
  }
  if (u.protocol !== `${DEEP_LINK_SCHEME}:` || u.username || u.password || u.port) return null;
  const route = `${u.host}${u.pathname}`.replace(/\/+$/, '');
  const q = Object.fromEntries(u.searchParams);
  const candidate =
    route === 'billing/return'
      ? { kind: 'billing-return', status: q.status }
      : route === 'auth/callback'
        ? { kind: 'auth-callback', code: q.code, state: q.state }
        : null;
  const parsed = DeepLink.safeParse(candidate);
  return parsed.success ? parsed.data : null;
}

/** The deep link among a second instance's argv (Windows/Linux pass it as an argument). */
export function deepLinkFromArgv(argv: readonly string[]): string | null {
  return argv.find((a) => a.startsWith(`${DEEP_LINK_SCHEME}://`)) ?? null;
}

export interface SenderFacts {
  /** The sending frame's URL (event.senderFrame.url); null when the frame is gone. */
  frameUrl: string | null;
  /** Whether the sending frame is its page's top frame (senderFrame === webContents.mainFrame). */
  isTopFrame: boolean;
  /** Whether the sending webContents is the main window's. */
  isMainWindow: boolean;
}

/** Only the main window's top frame at app://atelier may call the app. */
export function isTrustedSender(s: SenderFacts): boolean {
  // WHATWG URL gives custom schemes an opaque origin, so compare scheme and host instead.
  return s.isMainWindow && s.isTopFrame && s.frameUrl !== null && isAppUrl(s.frameUrl);
}

/** Permission requests (camera, notifications, …) from the renderer: the app needs none. */
export function allowPermission(_permission: string): boolean {
  return false;
}

export interface SecretBackendFacts {
  encryptionAvailable: boolean;
  platform: NodeJS.Platform;
  /** safeStorage.getSelectedStorageBackend() on Linux; null elsewhere. */
  linuxBackend: string | null;
}

/**
 * Whether safeStorage really protects secrets here. On Linux without a keyring Chromium falls
 * back to `basic_text` (a fixed, public key): "encryption available" but worthless, so refuse.
 */
export function canStoreSecrets(f: SecretBackendFacts): boolean {
  if (!f.encryptionAvailable) return false;
  if (f.platform === 'linux')
    return f.linuxBackend !== null && f.linuxBackend !== 'basic_text' && f.linuxBackend !== 'unknown';
  return true;
}

/** Auto-update runs only in a packaged build and only when the user has not turned it off. */
export function shouldCheckForUpdates(f: { autoUpdate: boolean; isPackaged: boolean }): boolean {
  return f.isPackaged && f.autoUpdate;
}

export type UpdateSignatureCheck = { ok: true } | { ok: false; reason: string };

/** The publisher names in electron-builder's app-update.yml (`publisherName: X` or a YAML list). */
export function publisherNames(appUpdateYml: string): string[] {
  const m = /^publisherName:[ \t]*(.*)\n?((?:[ \t]+- .*\n?)*)/m.exec(appUpdateYml);
  if (!m) return [];
  const unquote = (v: string) => v.trim().replace(/^(['"])(.*)\1$/, '$2');
  const inline = m[1]!.trim();
  if (inline) return [unquote(inline)].filter(Boolean);
  return m[2]!
    .split('\n')
    .map((l) => l.replace(/^[ \t]+- /, ''))
    .map(unquote)
    .filter(Boolean);
}

/**
 * Whether this platform's updater refuses an update that is not signed by Atelier, given the
 * packaged app-update.yml (null when absent). Windows: electron-updater checks the installer's
 * Authenticode signature against `publisherName`, and skips the check when there is none.
 * macOS: Squirrel.Mac applies only an update that satisfies the running (signed) app's designated
 * requirement. Linux: AppImage updates carry a sha512 from the feed but no signature, so automatic
 * updates stay off there (deb/AppImage users update from the download page or their package manager).
 */
export function updateSignatureCheck(f: { platform: string; appUpdateYml: string | null }): UpdateSignatureCheck {
  if (f.platform === 'darwin') return { ok: true };
  if (f.platform === 'win32') {
    if (f.appUpdateYml === null) return { ok: false, reason: 'app-update.yml is missing' };
    return publisherNames(f.appUpdateYml).length
      ? { ok: true }
      : { ok: false, reason: 'app-update.yml names no publisher, so update signatures would not be checked' };
  }
  return { ok: false, reason: `updates on ${f.platform} are not signature-checked by electron-updater` };
}

// An image or its thumbnail (img_….thumb.png, issue 13).
const LIBRARY_FILE = /^img_[0-9A-Z]{22}(?:\.thumb)?\.png$/;

export type AppRequestTarget =
  { kind: 'file'; name: string } | { kind: 'asset'; relPath: string } | { kind: 'not-found' };

/**
 * What an app:// request serves: `/files/<image>.png` from the library, otherwise a file of the
 * built renderer (index.html for `/` and extension-less routes). Traversal and other hosts are not found.
 */
export function resolveAppRequest(url: string): AppRequestTarget {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return { kind: 'not-found' };
  }
  if (u.protocol !== `${APP_SCHEME}:` || u.host !== APP_HOST) return { kind: 'not-found' };
  let pathname: string;
  try {
    pathname = decodeURIComponent(u.pathname);
  } catch {
    return { kind: 'not-found' };
  }
  if (pathname.includes('\0') || pathname.includes('\\')) return { kind: 'not-found' };
  if (pathname.startsWith('/files/')) {
    const name = pathname.slice('/files/'.length);
    return LIBRARY_FILE.test(name) ? { kind: 'file', name } : { kind: 'not-found' };
  }
  const segments = pathname.split('/').filter(Boolean);
  if (segments.some((s) => s === '..' || s === '.')) return { kind: 'not-found' };
  const last = segments.at(-1) ?? '';
  if (segments.length === 0 || !last.includes('.')) return { kind: 'asset', relPath: 'index.html' };
  return { kind: 'asset', relPath: segments.join('/') };
}
