/**
 * IPC registration: one `atelier:invoke` handler running the shared dispatcher (channel lookup,
 * zod validation, envelopes), with the sender check on every call; events go to the main window.
 */
import { ipcMain, type BrowserWindow, type IpcMainInvokeEvent } from 'electron';
import type { IpcHandlers } from '@atelier/common';
import type { DesktopEvents } from '../services/desktop-services.ts';
import { dispatchIpc } from '../services/ipc-dispatch.ts';
import { isTrustedSender } from './policy.ts';

export const INVOKE_CHANNEL = 'atelier:invoke';
export const EVENT_CHANNEL = 'atelier:event';

export function registerIpc(opts: {
  handlers: IpcHandlers;
  events: DesktopEvents;
  mainWindow: () => BrowserWindow | null;
  log: (msg: string, err?: unknown) => void;
}): () => void {
  const trusted = (event: IpcMainInvokeEvent) => {
    const win = opts.mainWindow();
    const frame = event.senderFrame;
    return isTrustedSender({
      frameUrl: frame?.url ?? null,
      isTopFrame: frame !== null && frame === event.sender.mainFrame,
      isMainWindow: win !== null && !win.isDestroyed() && event.sender === win.webContents,
    });
  };
  ipcMain.handle(INVOKE_CHANNEL, (event, message: unknown) => {
    const m = (typeof message === 'object' && message !== null ? message : {}) as {
      channel?: unknown;
      input?: unknown;
    };
    return dispatchIpc(
      opts.handlers,
      { channel: m.channel, input: m.input, senderAllowed: trusted(event) },
      (err, channel) => opts.log(`IPC ${channel} failed`, err),
    );
  });
  const unsubscribe = opts.events.onAny((name, payload) => {
    const win = opts.mainWindow();
    if (win && !win.isDestroyed()) win.webContents.send(EVENT_CHANNEL, name, payload);
  });
  return () => {
    ipcMain.removeHandler(INVOKE_CHANNEL);
    unsubscribe();
  };
}
