/**
 * The gallery sync details in Settings (issue 13): where sync stands (with Sync now / Retry),
 * cloud storage used of the plan's limit, Pause / Resume, images that will not fit (said before
 * uploading, with Upgrade) and what happens to images while sync is off.
 */
import { useId } from 'react';
import { BILLING_OFF } from '../lib/billing.ts';
import { formatBytes, formatDateTime } from '../lib/format.ts';
import { useS, useStores } from '../stores/index.ts';
import { ProgressBar } from './ProgressBar.tsx';
import { overLimitText, syncHeadline, useSyncUpgrade } from './SyncIndicator.tsx';

export function SyncPanel({ enabled }: { enabled: boolean }) {
  const { settings } = useStores();
  const sync = useS(settings, (s) => s.sync);
  const { url, upgrade, billingOff } = useSyncUpgrade();
  const meterId = useId();
  const st = settings.getState();
  if (!enabled)
    return (
      <p className="muted small" data-testid="sync-off-explained">
        Sync is off: new images stay on this computer only, and changes made on your other devices are not downloaded.
        Images already in the cloud stay there, and nothing is deleted on either side; switching sync back on uploads
        what is waiting and brings this computer up to date.
      </p>
    );
  if (!sync) return null;
  if (sync.state === 'signed_out')
    return <p className="muted small">Sign in to sync your gallery. Until then your images stay on this computer.</p>;
  const head = syncHeadline(sync);
  const storage = sync.storage;
  const storageFull = !!sync.overLimit || sync.errorCode === 'QUOTA_STORAGE_EXCEEDED';
  return (
    <div className="sync-panel" data-testid="sync-panel">
      <p className="small" aria-live="polite">
        {head.text}
        {sync.pending > 0 && sync.state !== 'syncing'
          ? ` · ${sync.pending} image${sync.pending === 1 ? '' : 's'} (${formatBytes(sync.pendingBytes ?? 0)}) waiting to upload`
          : ''}
        {sync.lastSyncAt ? ` · last synced ${formatDateTime(sync.lastSyncAt)}` : ''}
      </p>
      {sync.state === 'syncing' && sync.progress && sync.progress.total > 0 && (
        <ProgressBar
          step={sync.progress.done}
          total={sync.progress.total}
          label="Sync progress"
          text={`${sync.progress.done} of ${sync.progress.total} images`}
        />
      )}
      {sync.state === 'error' && sync.error && (
        <p className="small sync-error" role="alert">
          {sync.error}
        </p>
      )}
      {sync.overLimit && sync.state !== 'error' && (
        <p className="small sync-error" role="alert">
          {overLimitText(sync)}
        </p>
      )}
      {storage && (
        <div className="usage">
          <div className="usage-head">
            <span id={meterId}>
              Cloud storage: {formatBytes(storage.used)} of {formatBytes(storage.limit)}
            </span>
          </div>
          <meter
            aria-labelledby={meterId}
            min={0}
            max={storage.limit}
            low={storage.limit * 0.75}
            high={storage.limit * 0.9}
            optimum={0}
            value={storage.used}
          />
        </div>
      )}
      <div className="sync-actions">
        <button type="button" className="btn" onClick={() => void st.syncNow()} disabled={sync.paused === true}>
          {sync.state === 'error' ? 'Retry' : 'Sync now'}
        </button>
        <button type="button" className="btn" onClick={() => void st.pauseSync(!sync.paused)}>
          {sync.paused ? 'Resume sync' : 'Pause sync'}
        </button>
        {storageFull &&
          (billingOff ? (
            <span className="muted small">{BILLING_OFF}</span>
          ) : (
            <button type="button" className="btn btn-primary" onClick={() => void upgrade()}>
              Upgrade for more storage
            </button>
          ))}
        {url && (
          <a href={url} target="_blank" rel="noreferrer">
            Open checkout
          </a>
        )}
      </div>
      {sync.paused && (
        <p className="muted small">
          Paused: nothing is uploaded or downloaded until you resume. New images wait on this computer.
        </p>
      )}
    </div>
  );
}
