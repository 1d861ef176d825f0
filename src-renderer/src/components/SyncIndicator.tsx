/**
 * Gallery sync in the shell (issue 13): one line that says what sync is doing — up to date,
 * syncing n of m with a progress bar, paused, offline, or an error with Retry — with Pause /
 * Resume beside it, and Upgrade when the images waiting do not fit in the plan's storage (said
 * before any of their bytes move). The state model is decision 0143.
 */
import type { IpcOutput } from '@atelier/common';
import { useState } from 'react';
import { BILLING_OFF } from '../lib/billing.ts';
import { formatBytes } from '../lib/format.ts';
import { useS, useStores } from '../stores/index.ts';
import { ProgressBar } from './ProgressBar.tsx';

export type SyncStatus = IpcOutput<'sync:status'>;

/** What the shell says for a status: a short headline and, when there is one, the detail. */
export function syncHeadline(s: SyncStatus): { text: string; tone: 'ok' | 'busy' | 'warn' | 'error' } {
  if (!s.enabled) return { text: 'Sync off', tone: 'warn' };
  switch (s.state) {
    case 'signed_out':
      return { text: 'Sync: sign in to sync', tone: 'warn' };
    case 'paused':
      return { text: 'Sync paused', tone: 'warn' };
    case 'offline':
      return { text: 'Offline: will sync when back', tone: 'warn' };
    case 'error':
      // Full storage is not a broken sync: everything else synced, and the detail says what to do.
      if (s.errorCode === 'QUOTA_STORAGE_EXCEEDED') return { text: 'Cloud storage full', tone: 'error' };
      return { text: 'Sync failed', tone: 'error' };
    case 'syncing': {
      const p = s.progress;
      return { text: p && p.total > 0 ? `Syncing ${p.done} of ${p.total}` : 'Syncing…', tone: 'busy' };
    }
    default:
      if (s.overLimit) return { text: 'Cloud storage full', tone: 'error' };
      // The gallery is complete (thumbnails); full images still arriving in the background.
      if (s.downloads && s.downloads.waiting > 0)
        return { text: `Downloading images ${s.downloads.done} of ${s.downloads.total}`, tone: 'busy' };
      return { text: s.pending > 0 ? `${s.pending} waiting to sync` : 'Gallery in sync', tone: 'ok' };
  }
}

/**
 * Upgrade from a sync message: opens Checkout (the system browser, or a link in the browser host).
 * `billingOff`: the server has no billing, so there is nothing to open (say BILLING_OFF instead).
 */
export function useSyncUpgrade() {
  const { account, app } = useStores();
  const [url, setUrl] = useState<string | null>(null);
  const billing = useS(account, (s) => s.state?.billing ?? null);
  const billingOff = billing !== null && !billing.available;
  const upgrade = async () => {
    try {
      setUrl(await account.getState().upgrade());
      app
        .getState()
        .toast({ kind: 'info', message: 'Checkout opened in your browser. Come back here when you are done.' });
    } catch (e) {
      app.getState().reportError(e);
    }
  };
  return { url, upgrade, billingOff };
}

/** The sentence for images that do not fit, or null. */
export function overLimitText(s: SyncStatus): string | null {
  if (!s.overLimit) return null;
  const n = s.overLimit.images;
  const room = s.storage ? ` (${formatBytes(s.storage.used)} of ${formatBytes(s.storage.limit)} used)` : '';
  return `${n} image${n === 1 ? '' : 's'} (${formatBytes(s.overLimit.bytes)}) will not fit in your cloud storage${room}. They stay on this computer; upgrade for more space.`;
}

export function SyncIndicator() {
  const { settings, account } = useStores();
  const sync = useS(settings, (s) => s.sync);
  const signedIn = useS(account, (s) => s.state?.signedIn ?? false);
  const { url, upgrade, billingOff } = useSyncUpgrade();
  if (!sync || !signedIn) return null;
  const head = syncHeadline(sync);
  const full = sync.overLimit !== null && sync.overLimit !== undefined;
  const storageFull = full || sync.errorCode === 'QUOTA_STORAGE_EXCEEDED';
  const st = settings.getState();
  return (
    <div className={`sync-indicator sync-${head.tone}`} data-testid="sync-indicator" data-state={sync.state}>
      <div className="sync-head" role="status" aria-live="polite">
        <span className="sync-dot" aria-hidden="true" />
        <span>{head.text}</span>
      </div>
      {sync.state === 'syncing' && sync.progress && sync.progress.total > 0 && (
        <ProgressBar
          step={sync.progress.done}
          total={sync.progress.total}
          label="Gallery sync"
          text={`${sync.progress.done} of ${sync.progress.total} images`}
        />
      )}
      {sync.state === 'error' && sync.error && <p className="small sync-error">{sync.error}</p>}
      {full && sync.state !== 'error' && <p className="small sync-error">{overLimitText(sync)}</p>}
      {sync.enabled && (
        <div className="sync-actions">
          {sync.state === 'error' && (
            <button type="button" className="btn btn-link" onClick={() => void st.syncNow()}>
              Retry
            </button>
          )}
          {sync.paused ? (
            <button type="button" className="btn btn-link" onClick={() => void st.pauseSync(false)}>
              Resume sync
            </button>
          ) : (
            <button type="button" className="btn btn-link" onClick={() => void st.pauseSync(true)}>
              Pause sync
            </button>
          )}
          {storageFull &&
            (billingOff ? (
              <span className="muted small">{BILLING_OFF}</span>
            ) : (
              <button type="button" className="btn btn-link" onClick={() => void upgrade()}>
                Upgrade
              </button>
            ))}
          {/* Only while storage is full: once the upgrade made room, Checkout is no longer the way out. */}
          {storageFull && url && (
            <a href={url} target="_blank" rel="noreferrer" className="small">
              Open checkout
            </a>
          )}
        </div>
      )}
    </div>
  );
}
