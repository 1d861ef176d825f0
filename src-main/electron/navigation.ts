/** Applies the navigation policy to every webContents the app creates. */
import { app, session, shell, type WebContents } from 'electron';
import { allowPermission, decideNavigation, EXTERNAL_ALLOW_LIST, isAllowedExternal } from './policy.ts';

/** `devOrigins`: the local stack's loopback pages (its mailbox) in an unpackaged app; see policy.ts. */
export function openExternalSafely(url: string, devOrigins: readonly string[] = []): Promise<void> {
  if (!isAllowedExternal(url, EXTERNAL_ALLOW_LIST, devOrigins))
    return Promise.reject(new Error(`refused to open ${url.slice(0, 100)}`));
  return shell.openExternal(url);
}

function harden(contents: WebContents, devOrigins: () => readonly string[]): void {
  const onNavigate = (event: { preventDefault(): void }, url: string) => {
    event.preventDefault();
    const d = decideNavigation(url, EXTERNAL_ALLOW_LIST, devOrigins());
    if ('openExternal' in d) void openExternalSafely(d.openExternal, devOrigins());
  };
  contents.on('will-navigate', onNavigate);
  contents.on('will-redirect', onNavigate);
  contents.on('will-attach-webview', (event) => event.preventDefault());
  contents.setWindowOpenHandler(({ url }) => {
    const d = decideNavigation(url, EXTERNAL_ALLOW_LIST, devOrigins());
    if ('openExternal' in d) void openExternalSafely(d.openExternal, devOrigins());
    return { action: 'deny' };
  });
}

export function installNavigationPolicy(devOrigins: () => readonly string[] = () => []): void {
  app.on('web-contents-created', (_e, contents) => harden(contents, devOrigins));
  app.whenReady().then(() => {
    session.defaultSession.setPermissionRequestHandler((_wc, permission, callback) =>
      callback(allowPermission(permission)),
    );
    session.defaultSession.setPermissionCheckHandler((_wc, permission) => allowPermission(permission));
  });
}
