/** Applies the navigation policy to every webContents the app creates. */
import { app, session, shell, type WebContents } from 'electron';
import { allowPermission, decideNavigation, isAllowedExternal } from './policy.ts';

export function openExternalSafely(url: string): Promise<void> {
  if (!isAllowedExternal(url)) return Promise.reject(new Error(`refused to open ${url.slice(0, 100)}`));
  return shell.openExternal(url);
}

function harden(contents: WebContents): void {
  const onNavigate = (event: { preventDefault(): void }, url: string) => {
    event.preventDefault();
    const d = decideNavigation(url);
    if ('openExternal' in d) void openExternalSafely(d.openExternal);
  };
  contents.on('will-navigate', onNavigate);
  contents.on('will-redirect', onNavigate);
  contents.on('will-attach-webview', (event) => event.preventDefault());
  contents.setWindowOpenHandler(({ url }) => {
    const d = decideNavigation(url);
    if ('openExternal' in d) void openExternalSafely(d.openExternal);
    return { action: 'deny' };
  });
}

export function installNavigationPolicy(): void {
  app.on('web-contents-created', (_e, contents) => harden(contents));
  app.whenReady().then(() => {
    session.defaultSession.setPermissionRequestHandler((_wc, permission, callback) =>
      callback(allowPermission(permission)),
    );
    session.defaultSession.setPermissionCheckHandler((_wc, permission) => allowPermission(permission));
  });
}
