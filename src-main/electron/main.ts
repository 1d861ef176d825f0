// The Electron main process: single instance, atelier:// deep links, the app:// protocol, one
// secure window, IPC through the shared dispatcher, the engine in a utilityProcess, tokens in
// safeStorage and auto-update with an honoured opt-out. Policy lives in policy.ts (pure, tested).
import os from 'node:os';
import path from 'node:path';
import { app, shell, type BrowserWindow } from 'electron';
import { createEngineHost } from '@atelier/engine/host/host';
import { BUNDLED_MODELS_DIR, createModelStore } from '@atelier/engine/store/store';
import { createDesktopServices, layoutOf, type DesktopServices } from '../services/desktop-services.ts';
import { engineHostPort, modelStorePort } from '../services/engine-adapters.ts';
import { loadShellConfig } from './config.ts';
import { spawnUtilityEngine } from './engine-process.ts';
import { registerIpc } from './ipc.ts';
import { installNavigationPolicy, openExternalSafely } from './navigation.ts';
import { APP_ORIGIN, DEEP_LINK_SCHEME, appCsp, deepLinkFromArgv, parseDeepLink } from './policy.ts';
import { handleAppProtocol, registerAppScheme } from './protocol.ts';
import { SafeStorageSecretStore } from './secret-store.ts';
import { startUpdater } from './updater.ts';
import { createMainWindow } from './window.ts';

const repoRoot = path.resolve(import.meta.dirname, '../..');
const log = (msg: string, err?: unknown) =>
  console.error(`[main] ${msg}${err ? `: ${(err as Error)?.stack ?? String(err)}` : ''}`);

if (!app.requestSingleInstanceLock()) {
  app.quit();
} else {
  registerAppScheme();
  // The local stack's mailbox page may open in the browser (development only; set once the config is read).
  let devOrigins: string[] = [];
  installNavigationPolicy(() => devOrigins);
  app.setAsDefaultProtocolClient(DEEP_LINK_SCHEME);

  let win: BrowserWindow | null = null;
  let services: DesktopServices | null = null;
  const pendingLinks: string[] = [];

  const handleDeepLink = (raw: string | null) => {
    if (!raw) return;
    if (!services) {
      pendingLinks.push(raw);
      return;
    }
    const link = parseDeepLink(raw);
    if (!link) return log('ignored a malformed deep link');
    if (link.kind === 'billing-return') services.emit('billing:returned', { status: link.status });
    // auth-callback: sign-in uses Cognito's password flow today; the link only brings the app forward.
    if (win) {
      if (win.isMinimized()) win.restore();
      win.focus();
    }
  };
  app.on('second-instance', (_e, argv) => handleDeepLink(deepLinkFromArgv(argv)));
  app.on('open-url', (e, url) => {
    e.preventDefault();
    handleDeepLink(url);
  });
  pendingLinks.push(...[deepLinkFromArgv(process.argv)].filter((l): l is string => l !== null));

  app.whenReady().then(async () => {
    const config = loadShellConfig(repoRoot, app.isPackaged);
    devOrigins = config.mailboxUrl ? [new URL(config.mailboxUrl).origin] : [];
    const userData = app.getPath('userData');
    const layout = layoutOf({ userData });
    // Leave a core for the UI: inference saturates every thread it is given.
    const threads = Math.max(1, Math.min(8, os.availableParallelism() - 1));
    // Packaged: no fixtures; the bundled demo model lives in app.asar.unpacked (onnxruntime reads real files).
    const store = createModelStore({
      modelsDir: layout.models,
      ...(app.isPackaged
        ? {
            fixtureDirs: [],
            bundledDirs: [BUNDLED_MODELS_DIR.replace(`app.asar${path.sep}`, `app.asar.unpacked${path.sep}`)],
          }
        : {}),
    });
    services = await createDesktopServices({
      paths: { userData },
      secretStore: new SafeStorageSecretStore(path.join(userData, 'secrets')),
      // No store here: the queue passes the model's folder (resolved through the cached model list), so the
      // engine host does not rescan the store on the event loop for every job.
      engine: engineHostPort(createEngineHost({ threads, spawn: spawnUtilityEngine }), () => threads),
      models: modelStorePort(store),
      cloud: config.cloud,
      shell: 'electron',
      version: app.getVersion(),
      platform: process.platform,
      urlFor: (f) => `${APP_ORIGIN}/files/${encodeURIComponent(f)}`,
      openExternal: (url) => openExternalSafely(url, devOrigins),
      mailboxUrl: config.mailboxUrl,
      revealFile: (f) => shell.showItemInFolder(f),
      log,
    });
    handleAppProtocol({
      rendererDir: path.join(repoRoot, 'src-renderer/dist'),
      filesDir: layout.images,
      csp: appCsp({ apiUrl: config.cloud?.apiUrl ?? null, imageOrigins: config.imageOrigins }),
    });
    const s = services;
    registerIpc({ handlers: s.handlers, events: s.events, mainWindow: () => win, log });
    win = createMainWindow(path.join(import.meta.dirname, 'preload.cjs'));
    win.on('closed', () => (win = null));
    for (const l of pendingLinks.splice(0)) handleDeepLink(l);
    startUpdater({
      autoUpdate: () => s.settings().autoUpdate,
      isPackaged: app.isPackaged,
      log,
      resourcesPath: process.resourcesPath,
    });
  });

  app.on('window-all-closed', () => app.quit());
  let quitting = false;
  app.on('before-quit', (e) => {
    if (quitting || !services) return;
    e.preventDefault();
    quitting = true;
    services.close().finally(() => app.quit());
  });
}
