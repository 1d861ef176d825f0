/** Auto-update through electron-updater, honouring the user's opt-out (no check at all when off). */
import electronUpdater from 'electron-updater';
import { shouldCheckForUpdates } from './policy.ts';

export function startUpdater(opts: {
  autoUpdate: () => boolean;
  isPackaged: boolean;
  log: (msg: string, err?: unknown) => void;
}): () => void {
  const check = () => {
    if (!shouldCheckForUpdates({ autoUpdate: opts.autoUpdate(), isPackaged: opts.isPackaged })) return;
    electronUpdater.autoUpdater.checkForUpdatesAndNotify().catch((e: unknown) => opts.log('update check failed', e));
  };
  electronUpdater.autoUpdater.autoDownload = true;
  check();
  const timer = setInterval(check, 6 * 60 * 60_000);
  return () => clearInterval(timer);
}
