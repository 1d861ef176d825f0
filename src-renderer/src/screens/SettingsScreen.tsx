import { SCHEDULERS, type RunTarget, type Scheduler, type Settings } from '@atelier/common';
import { useState } from 'react';
import { ProgressBar } from '../components/ProgressBar.tsx';
import { formatBytes, formatDateTime } from '../lib/format.ts';
import { useS, useStores } from '../stores/index.ts';
import { SCHEDULER_LABELS } from './GenerateScreen.tsx';

function Toggle({
  id,
  label,
  checked,
  onChange,
  hint,
}: {
  id: string;
  label: string;
  checked: boolean;
  onChange: (v: boolean) => void;
  hint?: string;
}) {
  return (
    <div className="field field-inline">
      <input
        id={id}
        type="checkbox"
        role="switch"
        checked={checked}
        onChange={(e) => onChange(e.target.checked)}
        aria-describedby={hint ? `${id}-hint` : undefined}
      />
      <label htmlFor={id}>{label}</label>
      {hint && (
        <div className="hint" id={`${id}-hint`}>
          {hint}
        </div>
      )}
    </div>
  );
}

function Models() {
  const { settings, app } = useStores();
  const models = useS(settings, (s) => s.models);
  const downloads = useS(settings, (s) => s.downloads);
  const current = useS(settings, (s) => s.settings);
  const [importPath, setImportPath] = useState('');
  const [mode, setMode] = useState<'copy' | 'link'>('copy');
  const [url, setUrl] = useState('');
  const [sha, setSha] = useState('');
  const [busy, setBusy] = useState(false);
  const s = settings.getState();
  const doImport = async () => {
    setBusy(true);
    try {
      const m = await s.importModel(importPath.trim(), mode);
      setImportPath('');
      app.getState().toast({ kind: 'success', message: `Imported ${m.name}.` });
    } catch (e) {
      app.getState().reportError(e);
    } finally {
      setBusy(false);
    }
  };
  const doDownload = async () => {
    try {
      await s.download(url.trim(), sha.trim() || undefined);
      setUrl('');
      setSha('');
    } catch (e) {
      app.getState().reportError(e);
    }
  };
  const active = Object.values(downloads).filter((d) => d.state !== 'done' && d.state !== 'canceled');
  return (
    <section aria-labelledby="models-title" className="settings-section">
      <h2 id="models-title">Models</h2>
      {models.length === 0 ? (
        <p className="muted">No models installed. Import a Stable Diffusion ONNX folder or download one below.</p>
      ) : (
        <table className="models">
          <thead>
            <tr>
              <th scope="col">Model</th>
              <th scope="col">Size</th>
              <th scope="col">Default</th>
              <th scope="col">
                <span className="sr-only">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {models.map((m) => (
              <tr key={m.id}>
                <td>
                  <div>{m.name}</div>
                  <div className="muted small" title={m.path}>
                    {m.id}
                  </div>
                </td>
                <td>{formatBytes(m.sizeBytes)}</td>
                <td>
                  <input
                    type="radio"
                    name="default-model"
                    aria-label={`Use ${m.name} by default`}
                    checked={current?.defaultModel ? current.defaultModel === m.id : m.isDefault}
                    onChange={() => void s.update({ defaultModel: m.id })}
                  />
                </td>
                <td>
                  <button
                    type="button"
                    className="btn btn-link"
                    onClick={() => void s.removeModel(m.id)}
                    aria-label={`Remove ${m.name}`}
                  >
                    Remove
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {active.length > 0 && (
        <ul className="downloads" aria-label="Downloads">
          {active.map((d) => (
            <li key={d.id}>
              <div className="row space">
                <span className="ellipsis" title={d.url}>
                  {d.url}
                </span>
                <span className="muted small">
                  {d.state === 'failed'
                    ? `Failed: ${d.error ?? ''}`
                    : d.state === 'verifying'
                      ? 'Verifying…'
                      : `${formatBytes(d.received)}${d.total ? ` of ${formatBytes(d.total)}` : ''}`}
                </span>
                {d.state === 'downloading' && (
                  <button type="button" className="btn btn-link" onClick={() => void s.cancelDownload(d.id)}>
                    Cancel
                  </button>
                )}
              </div>
              <ProgressBar step={d.received} total={d.total ?? 0} label={`Download of ${d.url}`} />
            </li>
          ))}
        </ul>
      )}
      <form
        className="inline-form"
        onSubmit={(e) => {
          e.preventDefault();
          void doImport();
        }}
      >
        <div className="field grow">
          <label htmlFor="import-path">Import a model folder</label>
          <input
            id="import-path"
            value={importPath}
            onChange={(e) => setImportPath(e.target.value)}
            placeholder="/path/to/stable-diffusion-onnx"
          />
        </div>
        <div className="field">
          <label htmlFor="import-mode">How</label>
          <select id="import-mode" value={mode} onChange={(e) => setMode(e.target.value as 'copy' | 'link')}>
            <option value="copy">Copy into models folder</option>
            <option value="link">Use in place</option>
          </select>
        </div>
        <button type="submit" className="btn" disabled={!importPath.trim() || busy}>
          {busy ? 'Importing…' : 'Import'}
        </button>
      </form>
      <form
        className="inline-form"
        onSubmit={(e) => {
          e.preventDefault();
          void doDownload();
        }}
      >
        <div className="field grow">
          <label htmlFor="download-url">Download from URL</label>
          <input
            id="download-url"
            type="url"
            value={url}
            onChange={(e) => setUrl(e.target.value)}
            placeholder="https://…/model.zip"
          />
        </div>
        <div className="field">
          <label htmlFor="download-sha">SHA-256 (optional)</label>
          <input id="download-sha" value={sha} onChange={(e) => setSha(e.target.value)} pattern="[0-9a-f]{64}" />
        </div>
        <button type="submit" className="btn" disabled={!url.trim()}>
          Download
        </button>
      </form>
    </section>
  );
}

export function SettingsScreen() {
  const { settings } = useStores();
  const current = useS(settings, (s) => s.settings);
  const providers = useS(settings, (s) => s.providers);
  const sync = useS(settings, (s) => s.sync);
  const info = useS(settings, (s) => s.info);
  if (!current) return <p role="status">Loading settings…</p>;
  const s = settings.getState();
  const set = (patch: Partial<Settings>) => void s.update(patch);
  return (
    <div className="panel settings">
      <h1 className="screen-title">Settings</h1>
      <section aria-labelledby="run-title" className="settings-section">
        <h2 id="run-title">Running</h2>
        <div className="grid-2">
          <div className="field">
            <label htmlFor="set-run">Default place to run</label>
            <select
              id="set-run"
              value={current.runMode}
              onChange={(e) => set({ runMode: e.target.value as RunTarget })}
            >
              <option value="auto">Automatic (GPU here, else cloud)</option>
              <option value="local">Always this computer</option>
              <option value="cloud">Always Atelier Cloud</option>
            </select>
          </div>
          <div className="field">
            <label htmlFor="set-sched">Default scheduler</label>
            <select
              id="set-sched"
              value={current.defaultScheduler}
              onChange={(e) => set({ defaultScheduler: e.target.value as Scheduler })}
            >
              {SCHEDULERS.map((x) => (
                <option key={x} value={x}>
                  {SCHEDULER_LABELS[x]}
                </option>
              ))}
            </select>
          </div>
          <div className="field">
            <label htmlFor="set-threads">CPU threads</label>
            <input
              id="set-threads"
              type="number"
              min={0}
              max={256}
              value={current.threads}
              aria-describedby="set-threads-hint"
              onChange={(e) => {
                const n = Math.floor(Number(e.target.value));
                if (Number.isFinite(n) && n >= 0 && n <= 256) set({ threads: n });
              }}
            />
            <div className="hint" id="set-threads-hint">
              0 lets Atelier choose{providers ? ` (currently ${providers.threads})` : ''}.
            </div>
          </div>
          <div className="field">
            <label htmlFor="set-models-dir">Models folder</label>
            <input
              id="set-models-dir"
              defaultValue={current.modelsDir}
              onBlur={(e) => {
                if (e.target.value.trim() && e.target.value !== current.modelsDir)
                  set({ modelsDir: e.target.value.trim() });
              }}
            />
          </div>
        </div>
        {providers && (
          <div>
            <h3>Execution providers</h3>
            <ul className="providers">
              {providers.providers.map((p) => (
                <li key={p.name}>
                  <span className={`dot ${p.usable ? 'dot-ok' : 'dot-off'}`} aria-hidden="true" />
                  <strong>{p.name}</strong> {p.gpu ? '(GPU)' : '(CPU)'} —{' '}
                  {p.usable ? 'available' : (p.reason ?? 'not available')}
                </li>
              ))}
            </ul>
          </div>
        )}
      </section>
      <Models />
      <section aria-labelledby="sync-title" className="settings-section">
        <h2 id="sync-title">Sync and updates</h2>
        <Toggle
          id="set-sync"
          label="Sync my gallery across devices"
          checked={current.syncEnabled}
          onChange={(v) => set({ syncEnabled: v })}
          hint="Uploads your images to your Atelier Cloud account and downloads images from your other devices."
        />
        {sync && (
          <p className="muted small" aria-live="polite">
            Sync: {sync.state.replace('_', ' ')}
            {sync.pending ? ` · ${sync.pending} waiting` : ''}
            {sync.lastSyncAt ? ` · last ${formatDateTime(sync.lastSyncAt)}` : ''}
            {sync.error ? ` · ${sync.error}` : ''}{' '}
            {sync.enabled && (
              <button type="button" className="btn btn-link" onClick={() => void s.syncNow()}>
                Sync now
              </button>
            )}
          </p>
        )}
        <Toggle
          id="set-update"
          label="Install updates automatically"
          checked={current.autoUpdate}
          onChange={(v) => set({ autoUpdate: v })}
        />
      </section>
      <section aria-labelledby="look-title" className="settings-section">
        <h2 id="look-title">Appearance</h2>
        <div className="field">
          <label htmlFor="set-theme">Theme</label>
          <select
            id="set-theme"
            value={current.theme}
            onChange={(e) => set({ theme: e.target.value as Settings['theme'] })}
          >
            <option value="system">Match the system</option>
            <option value="light">Light</option>
            <option value="dark">Dark</option>
          </select>
        </div>
      </section>
      {info && (
        <p className="muted small">
          Atelier {info.version} · {info.platform} · {info.shell === 'electron' ? 'desktop app' : 'browser'}
          {info.apiUrl ? ` · cloud ${info.apiUrl}` : ''}
        </p>
      )}
    </div>
  );
}
