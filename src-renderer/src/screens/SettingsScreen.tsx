import { SCHEDULERS, type CatalogueModel, type RunTarget, type Scheduler, type Settings } from '@atelier/common';
import { useEffect, useState } from 'react';
import { ProgressBar } from '../components/ProgressBar.tsx';
import { SyncPanel } from '../components/SyncPanel.tsx';
import { FIXTURE_LABEL, formatBytes, vocabularyLine } from '../lib/format.ts';
import type { ModelDownload } from '../stores/settings.ts';
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

function DownloadState({ d, onCancel, onResume }: { d: ModelDownload; onCancel: () => void; onResume: () => void }) {
  const label = d.name ?? d.url;
  return (
    <div className="download" data-testid="download">
      {d.state === 'failed' || d.state === 'canceled' ? (
        <div className="row space">
          <span
            className={d.state === 'failed' ? 'error-text' : 'muted small'}
            role={d.state === 'failed' ? 'alert' : undefined}
          >
            {d.state === 'failed'
              ? (d.error ?? 'The download stopped.')
              : `Canceled at ${formatBytes(d.received)}${d.total ? ` of ${formatBytes(d.total)}` : ''}.`}{' '}
            {d.catalogueId ? 'Resume picks up where it stopped.' : ''}
          </span>
          {d.catalogueId && (
            <button type="button" className="btn" onClick={onResume}>
              Resume
            </button>
          )}
        </div>
      ) : (
        <>
          <div className="row space">
            <span className="muted small">
              {d.state === 'verifying'
                ? 'Checking the files…'
                : d.state === 'done'
                  ? 'Installed.'
                  : `${formatBytes(d.received)}${d.total ? ` of ${formatBytes(d.total)}` : ''}`}
            </span>
            {d.state === 'downloading' && (
              <button
                type="button"
                className="btn btn-link"
                onClick={onCancel}
                aria-label={`Cancel the download of ${label}`}
              >
                Cancel
              </button>
            )}
          </div>
          {d.state !== 'done' && <ProgressBar step={d.received} total={d.total ?? 0} label={`Download of ${label}`} />}
        </>
      )}
    </div>
  );
}

/** Real ONNX Stable Diffusion exports, one click away: size, licence, what they need, Download. */
function Catalogue() {
  const { settings } = useStores();
  const catalogue = useS(settings, (s) => s.catalogue);
  const error = useS(settings, (s) => s.catalogueError);
  const downloads = useS(settings, (s) => s.downloads);
  const s = settings.getState();
  useEffect(() => {
    void settings.getState().loadCatalogue();
  }, [settings]);
  const latest = (m: CatalogueModel) =>
    Object.values(downloads)
      .filter((d) => d.catalogueId === m.id)
      .at(-1);
  return (
    <section aria-labelledby="catalogue-title" className="settings-subsection">
      <h3 id="catalogue-title">Get a model</h3>
      <p className="muted small">
        Real Stable Diffusion models exported to ONNX, downloaded file by file from their Hugging Face repository at a
        pinned revision and checked against their SHA-256. Interrupted downloads resume.
      </p>
      {error && (
        <p className="error-text" role="alert">
          {error}
        </p>
      )}
      {catalogue === null && !error && <p role="status">Loading the catalogue…</p>}
      {catalogue && (
        <ul className="catalogue" aria-label="Model catalogue">
          {catalogue.map((m) => {
            const d = latest(m);
            const busy = d && (d.state === 'downloading' || d.state === 'verifying');
            return (
              <li key={m.id} className="catalogue-item" aria-label={m.name}>
                <div className="row space">
                  <div className="catalogue-head">
                    <strong>{m.name}</strong>{' '}
                    <span className="muted small">
                      {m.repo} @ {m.revision.slice(0, 7)}
                    </span>
                  </div>
                  {m.installed ? (
                    <span className="badge badge-local">Installed</span>
                  ) : (
                    !busy && (
                      <button
                        type="button"
                        className="btn btn-primary"
                        onClick={() => void s.install(m.id)}
                        aria-label={`Download ${m.name}`}
                      >
                        {d && (d.state === 'failed' || d.state === 'canceled') ? 'Resume' : 'Download'}
                      </button>
                    )
                  )}
                </div>
                {m.description && <p className="small">{m.description}</p>}
                <dl className="catalogue-facts small">
                  <dt>Size</dt>
                  <dd>{formatBytes(m.sizeBytes)}</dd>
                  <dt>Licence</dt>
                  <dd>
                    {m.licenceUrl ? (
                      <a href={m.licenceUrl} target="_blank" rel="noreferrer noopener">
                        {m.licence}
                      </a>
                    ) : (
                      m.licence
                    )}
                  </dd>
                  <dt>Needs</dt>
                  <dd>{m.hardware}</dd>
                </dl>
                {d && !m.installed && (
                  <DownloadState
                    d={d}
                    onCancel={() => void s.cancelDownload(d.id)}
                    onResume={() => void s.install(m.id)}
                  />
                )}
              </li>
            );
          })}
        </ul>
      )}
    </section>
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
  const active = Object.values(downloads).filter((d) => !d.catalogueId && d.state !== 'done' && d.state !== 'canceled');
  return (
    <section aria-labelledby="models-title" className="settings-section">
      <h2 id="models-title">Models</h2>
      {models.length === 0 ? (
        <p className="muted">No models installed. Download one from the catalogue below or import an ONNX folder.</p>
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
                  <div>
                    {m.name}{' '}
                    {m.fixture && (
                      <span className="badge badge-fixture" title={FIXTURE_LABEL}>
                        Test fixture
                      </span>
                    )}
                  </div>
                  <div className="muted small" title={m.path}>
                    {m.id}
                  </div>
                  {m.fixture && <div className="muted small">{FIXTURE_LABEL}: for tests, not for pictures.</div>}
                  {m.description && <div className="small">{m.description}</div>}
                  {vocabularyLine(m.vocabulary) && (
                    <div className="muted small">Knows {vocabularyLine(m.vocabulary)}</div>
                  )}
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
                  {m.removable === false ? (
                    <span className="muted small">{m.fixture ? 'Part of the repository' : 'Shipped with Atelier'}</span>
                  ) : (
                    <button
                      type="button"
                      className="btn btn-link"
                      onClick={() => void s.removeModel(m.id)}
                      aria-label={`Remove ${m.name}`}
                    >
                      Remove
                    </button>
                  )}
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
      <Catalogue />
      <h3>Your own model</h3>
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
          <label htmlFor="download-url">Download from a manifest URL</label>
          <input
            id="download-url"
            type="url"
            value={url}
            onChange={(e) => setUrl(e.target.value)}
            placeholder="https://…/model-manifest.json"
            aria-describedby="download-url-hint"
          />
          <div className="hint" id="download-url-hint">
            A JSON manifest that lists the model folder’s files with their size and SHA-256 (not a .zip). For the models
            above, use their Download button.
          </div>
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
        <SyncPanel enabled={current.syncEnabled} />
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
