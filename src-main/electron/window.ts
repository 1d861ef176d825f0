/** The one main window, with the policy's webPreferences, loading the app from app://. */
import { BrowserWindow } from 'electron';
import { APP_ORIGIN, mainWindowOptions } from './policy.ts';

export function createMainWindow(preloadPath: string): BrowserWindow {
  const win = new BrowserWindow(mainWindowOptions(preloadPath));
  win.once('ready-to-show', () => win.show());
  void win.loadURL(`${APP_ORIGIN}/index.html`);
  return win;
}
