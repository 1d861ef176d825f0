import { API_KEY_SCOPE_DESCRIPTIONS, API_KEY_SCOPES, type ApiKey, type ApiKeyScope } from '@atelier/common';
import { useCallback, useEffect, useState, type FormEvent } from 'react';
import { formatDateTime } from '../lib/format.ts';
import { userMessageOf } from '../lib/field-errors.ts';
import { useStores } from '../stores/index.ts';
import { Modal } from './Modal.tsx';

/**
 * Account → API keys (issue 16): create a key with a name and scopes (the whole key is shown once,
 * with Copy), list live keys (prefix, scopes, created, last used), revoke one after confirming.
 * The key itself lives only in this component's state until the dialog showing it closes.
 */
export function ApiKeysPanel() {
  const { api, app } = useStores();
  const [keys, setKeys] = useState<ApiKey[] | null>(null);
  const [loadError, setLoadError] = useState<string | null>(null);
  const [name, setName] = useState('');
  const [scopes, setScopes] = useState<ApiKeyScope[]>(['generate', 'gallery:read']);
  const [creating, setCreating] = useState(false);
  const [formError, setFormError] = useState<string | null>(null);
  const [created, setCreated] = useState<{ name: string; key: string } | null>(null);
  const [revoking, setRevoking] = useState<ApiKey | null>(null);
  const [revokeBusy, setRevokeBusy] = useState(false);

  const load = useCallback(async () => {
    try {
      setKeys((await api.invoke('apiKeys:list', {})).items);
      setLoadError(null);
    } catch (e) {
      setLoadError(userMessageOf(e));
    }
  }, [api]);
  useEffect(() => void load(), [load]);

  const toggle = (s: ApiKeyScope) => setScopes((cur) => (cur.includes(s) ? cur.filter((x) => x !== s) : [...cur, s]));
  const canCreate = name.trim().length > 0 && scopes.length > 0 && !creating;

  const create = async (e: FormEvent) => {
    e.preventDefault();
    if (!canCreate) return;
    setCreating(true);
    setFormError(null);
    try {
      // Keep the scopes in the order they are offered, whatever order they were ticked in.
      const r = await api.invoke('apiKeys:create', {
        name: name.trim(),
        scopes: API_KEY_SCOPES.filter((s) => scopes.includes(s)),
      });
      setCreated({ name: r.name, key: r.key });
      setName('');
      await load();
    } catch (err) {
      setFormError(userMessageOf(err));
    } finally {
      setCreating(false);
    }
  };

  const copy = async () => {
    if (!created) return;
    try {
      await navigator.clipboard.writeText(created.key);
      app.getState().toast({ kind: 'success', message: 'API key copied.' });
    } catch {
      app.getState().toast({ kind: 'error', message: 'Could not reach the clipboard. Select the key and copy it.' });
    }
  };

  const revoke = async () => {
    if (!revoking) return;
    setRevokeBusy(true);
    try {
      await api.invoke('apiKeys:revoke', { id: revoking.id });
      app.getState().toast({ kind: 'info', message: `Revoked "${revoking.name}". Requests with it are refused now.` });
      setRevoking(null);
      await load();
    } catch (err) {
      app.getState().reportError(err);
    } finally {
      setRevokeBusy(false);
    }
  };

  return (
    <section aria-labelledby="api-keys-title" className="account-section" data-testid="api-keys">
      <h2 id="api-keys-title">API keys</h2>
      <p>
        Use Atelier Cloud from scripts and other services. A key acts as you, within its scopes, on your plan and quota.
      </p>
      <form className="api-key-form" noValidate onSubmit={(e) => void create(e)} aria-label="Create API key">
        <div className="field">
          <label htmlFor="api-key-name">Key name</label>
          <input
            id="api-key-name"
            value={name}
            maxLength={100}
            placeholder="e.g. nightly render script"
            onChange={(e) => setName(e.target.value)}
          />
        </div>
        <fieldset className="api-key-scopes">
          <legend>Scopes</legend>
          {API_KEY_SCOPES.map((s) => (
            <label key={s} className="api-key-scope">
              <input type="checkbox" checked={scopes.includes(s)} onChange={() => toggle(s)} />
              <span>
                <code>{s}</code>
                <span className="muted small api-key-scope-help">{API_KEY_SCOPE_DESCRIPTIONS[s]}</span>
              </span>
            </label>
          ))}
        </fieldset>
        {scopes.length === 0 && <p className="muted small">Choose at least one scope.</p>}
        {formError && (
          <p className="error-text" role="alert">
            {formError}
          </p>
        )}
        <button type="submit" className="btn btn-primary" disabled={!canCreate}>
          {creating ? 'Creating…' : 'Create key'}
        </button>
      </form>

      {loadError && (
        <p role="alert" className="error-text">
          Could not load your API keys: {loadError}{' '}
          <button type="button" className="btn" onClick={() => void load()}>
            Try again
          </button>
        </p>
      )}
      {keys === null && !loadError && <p role="status">Loading your API keys…</p>}
      {keys?.length === 0 && <p className="muted">You have no API keys.</p>}
      {keys && keys.length > 0 && (
        <table className="api-keys-table" aria-label="API keys">
          <thead>
            <tr>
              <th scope="col">Key</th>
              <th scope="col">Scopes</th>
              <th scope="col">Created</th>
              <th scope="col">Last used</th>
              <th scope="col">
                <span className="sr-only">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {keys.map((k) => (
              <tr key={k.id} data-testid="api-key-row">
                <td>
                  <div className="api-key-name">{k.name}</div>
                  <code className="muted">{k.prefix}…</code>
                </td>
                <td>{k.scopes.join(', ')}</td>
                <td>{formatDateTime(k.createdAt)}</td>
                <td>{k.lastUsedAt ? formatDateTime(k.lastUsedAt) : 'Never'}</td>
                <td>
                  <button
                    type="button"
                    className="btn btn-danger"
                    aria-label={`Revoke ${k.name}`}
                    onClick={() => setRevoking(k)}
                  >
                    Revoke
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}

      <Modal open={created !== null} onClose={() => setCreated(null)} label="Your new API key">
        <div className="modal-body">
          <h2>Copy your new key now</h2>
          <p>
            This is the only time <strong>{created?.name}</strong> is shown in full. Store it somewhere safe, such as
            your password manager or your CI&apos;s secrets.
          </p>
          <input
            aria-label="New API key"
            readOnly
            value={created?.key ?? ''}
            className="api-key-secret"
            data-autofocus
            onFocus={(e) => e.currentTarget.select()}
          />
          <div className="row end">
            <button type="button" className="btn" onClick={() => void copy()}>
              Copy
            </button>
            <button type="button" className="btn btn-primary" onClick={() => setCreated(null)}>
              Done
            </button>
          </div>
        </div>
      </Modal>

      <Modal open={revoking !== null} onClose={() => setRevoking(null)} label="Revoke API key">
        <div className="modal-body">
          <h2>Revoke “{revoking?.name}”?</h2>
          <p>
            Scripts and services using <code>{revoking?.prefix}…</code> stop working at once. This cannot be undone.
          </p>
          <div className="row end">
            <button type="button" className="btn" data-autofocus onClick={() => setRevoking(null)}>
              Cancel
            </button>
            <button type="button" className="btn btn-danger" disabled={revokeBusy} onClick={() => void revoke()}>
              {revokeBusy ? 'Revoking…' : 'Revoke key'}
            </button>
          </div>
        </div>
      </Modal>
    </section>
  );
}
