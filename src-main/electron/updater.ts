/**
 * Auto-update through electron-updater, honouring the user's opt-out (no check at all when off) and
 * refusing to run where an unsigned update would not be refused (see updateSignatureCheck).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import electronUpdater from 'electron-updater';
import { shouldCheckForUpdates, updateSignatureCheck } from './policy.ts';

function readAppUpdateYml(resourcesPath: string): string | null {
  try {
    return readFileSync(path.join(resourcesPath, 'app-update.yml'), 'utf8');
  } catch {
    return null;
  }
}

export function startUpdater(opts: {
  autoUpdate: () => boolean;
  isPackaged: boolean;
  log: (msg: string, err?: unknown) => void;
  /** Where electron-updater reads app-update.yml (process.resourcesPath in a packaged app). */
  resourcesPath: string;
}): () => void {
  if (!opts.isPackaged) return () => {};
  const signatures = updateSignatureCheck({
    platform: process.platform,
    appUpdateYml: readAppUpdateYml(opts.resourcesPath),
  });
  if (!signatures.ok) {
    opts.log(`automatic updates are off: ${signatures.reason}`);
    return () => {};
  }
  const updater = electronUpdater.autoUpdater;
  updater.autoDownload = true;
  updater.allowDowngrade = false;
  updater.allowPrerelease = false;
  const check = () => {
    if (!shouldCheckForUpdates({ autoUpdate: opts.autoUpdate(), isPackaged: opts.isPackaged })) return;
    updater.checkForUpdatesAndNotify().catch((e: unknown) => opts.log('update check failed', e));
  };
  check();
  const timer = setInterval(check, 6 * 60 * 60_000);
  return () => clearInterval(timer);
}
