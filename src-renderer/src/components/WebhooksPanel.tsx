/**
 * Account → Webhooks (issue 16): add an endpoint (URL + events), see its signing secret once with
 * a copy button, list, enable/disable, send a test, rotate the secret, delete with a confirmation,
 * and read the delivery log with replay. Everything goes through the `webhooks:*` IPC channels to
 * the cloud; nothing is kept on this computer.
 */
import {
  WEBHOOK_EVENT_TYPES,
  type WebhookDelivery,
  type WebhookEndpoint,
  type WebhookEventType,
} from '@atelier/common';
import { useCallback, useEffect, useState, type FormEvent } from 'react';
import { fieldErrorsOf, userMessageOf } from '../lib/field-errors.ts';
import { useStores } from '../stores/index.ts';
import { Modal } from './Modal.tsx';

const EVENT_LABELS: Record<WebhookEventType, string> = {
  'generation.succeeded': 'Cloud generation finished',
  'generation.failed': 'Cloud generation failed',
  'usage.threshold': 'Usage reached 80 % / 100 %',
  'plan.changed': 'Plan changed',
};

function SecretOnce({ secret, onClose }: { secret: { url: string; value: string } | null; onClose: () => void }) {
  const { app } = useStores();
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(secret!.value);
      app.getState().toast({ kind: 'info', message: 'Signing secret copied.' });
    } catch {
      app.getState().toast({ kind: 'error', message: 'Could not copy: select the secret and copy it by hand.' });
    }
  };
  return (
    <Modal open={secret !== null} onClose={onClose} label="Signing secret">
      <div className="modal-body">
        <h2>Signing secret</h2>
        <p>
          Deliveries to <strong>{secret?.url}</strong> are signed with this secret. Store it in your receiver now: it is
          not shown again (you can rotate it for a new one).
        </p>
        <input
          className="webhook-secret"
          readOnly
          value={secret?.value ?? ''}
          aria-label="Signing secret"
          data-testid="webhook-secret"
          onFocus={(e) => e.currentTarget.select()}
        />
        <div className="row end">
          <button type="button" className="btn" onClick={() => void copy()} data-autofocus>
            Copy
          </button>
          <button type="button" className="btn btn-primary" onClick={onClose}>
            Done
          </button>
        </div>
      </div>
    </Modal>
  );
}

function DeliveryLog({ endpoint }: { endpoint: WebhookEndpoint }) {
  const { api, app } = useStores();
  const [items, setItems] = useState<WebhookDelivery[] | null>(null);
  const [cursor, setCursor] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const load = useCallback(
    async (more = false) => {
      try {
        const page = await api.invoke('webhooks:deliveries', {
          id: endpoint.id,
          ...(more && cursor ? { cursor } : {}),
        });
        setItems((prev) => (more && prev ? [...prev, ...page.items] : page.items));
        setCursor(page.nextCursor);
        setError(null);
      } catch (e) {
        setError(userMessageOf(e));
      }
    },
    [api, endpoint.id, cursor],
  );
  useEffect(() => {
    void load();
    // Only when the endpoint changes (the cursor is for "Load older", not a reason to reload).
  }, [endpoint.id]);
  const replay = async (d: WebhookDelivery) => {
    try {
      await api.invoke('webhooks:replay', { id: endpoint.id, deliveryId: d.id });
      app.getState().toast({ kind: 'info', message: 'Delivery queued again.' });
      await load();
    } catch (e) {
      app.getState().reportError(e);
    }
  };
  return (
    <div className="webhook-log" data-testid="webhook-log">
      <div className="row space">
        <h4>Deliveries</h4>
        <button type="button" className="btn btn-small" onClick={() => void load()}>
          Refresh
        </button>
      </div>
      {error && (
        <p className="error-text" role="alert">
          {error}
        </p>
      )}
      {items === null ? (
        <p role="status">Loading…</p>
      ) : items.length === 0 ? (
        <p className="muted small">No deliveries yet. Send a test to see one here.</p>
      ) : (
        <table className="webhook-deliveries">
          <thead>
            <tr>
              <th scope="col">When</th>
              <th scope="col">Event</th>
              <th scope="col">Status</th>
              <th scope="col">Attempts</th>
              <th scope="col">Response</th>
              <th scope="col">Latency</th>
              <th scope="col">
                <span className="sr-only">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {items.map((d) => (
              <tr key={d.id} data-testid="webhook-delivery" data-status={d.status}>
                <td>{new Date(d.createdAt).toLocaleString()}</td>
                <td>
                  {d.eventType}
                  {d.replayOf ? <span className="muted small"> (replay)</span> : null}
                </td>
                <td>
                  <span className={`delivery-status delivery-${d.status}`}>{d.status}</span>
                  {d.error ? <div className="muted small">{d.error}</div> : null}
                </td>
                <td>{d.attempts}</td>
                <td>{d.responseCode ?? '—'}</td>
                <td>{d.latencyMs === null ? '—' : `${d.latencyMs} ms`}</td>
                <td>
                  <button
                    type="button"
                    className="btn btn-small"
                    disabled={!endpoint.enabled}
                    title={endpoint.enabled ? 'Send this event again' : 'Enable the endpoint to replay'}
                    onClick={() => void replay(d)}
                  >
                    Replay
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {cursor && (
        <button type="button" className="btn btn-small" onClick={() => void load(true)}>
          Load older
        </button>
      )}
    </div>
  );
}

function EndpointRow({
  endpoint,
  onChanged,
  onSecret,
}: {
  endpoint: WebhookEndpoint;
  onChanged: () => Promise<void>;
  onSecret: (s: { url: string; value: string }) => void;
}) {
  const { api, app } = useStores();
  const [showLog, setShowLog] = useState(false);
  const [logKey, setLogKey] = useState(0);
  const [confirmDelete, setConfirmDelete] = useState(false);
  const [busy, setBusy] = useState(false);
  const [enabled, setEnabled] = useState(endpoint.enabled);
  useEffect(() => setEnabled(endpoint.enabled), [endpoint.enabled]);
  const act = async (fn: () => Promise<void>) => {
    setBusy(true);
    try {
      await fn();
    } catch (e) {
      app.getState().reportError(e);
    } finally {
      setBusy(false);
    }
  };
  return (
    <li className="webhook-endpoint" data-testid="webhook-endpoint">
      <div className="row space">
        <div>
          <div className="webhook-url">{endpoint.url}</div>
          <div className="muted small">{endpoint.events.map((e) => EVENT_LABELS[e]).join(' · ')}</div>
        </div>
        <label className="field-inline">
          <input
            type="checkbox"
            checked={enabled}
            disabled={busy}
            onChange={(e) => {
              // Shown at once; put back if the cloud refuses.
              const want = e.target.checked;
              setEnabled(want);
              void act(async () => {
                try {
                  await api.invoke('webhooks:update', { id: endpoint.id, patch: { enabled: want } });
                } catch (err) {
                  setEnabled(!want);
                  throw err;
                }
                await onChanged();
              });
            }}
          />
          Enabled
        </label>
      </div>
      <div className="row">
        <button
          type="button"
          className="btn btn-small"
          disabled={busy || !enabled}
          onClick={() =>
            void act(async () => {
              await api.invoke('webhooks:test', { id: endpoint.id });
              app.getState().toast({ kind: 'info', message: 'Test event sent. It shows in the deliveries below.' });
              setShowLog(true);
              setLogKey((k) => k + 1);
            })
          }
        >
          Send test
        </button>
        <button type="button" className="btn btn-small" aria-expanded={showLog} onClick={() => setShowLog((v) => !v)}>
          {showLog ? 'Hide deliveries' : 'Deliveries'}
        </button>
        <button
          type="button"
          className="btn btn-small"
          disabled={busy}
          onClick={() =>
            void act(async () => {
              const r = await api.invoke('webhooks:rotateSecret', { id: endpoint.id });
              onSecret({ url: r.url, value: r.secret });
            })
          }
        >
          Rotate secret
        </button>
        <button type="button" className="btn btn-small btn-danger" onClick={() => setConfirmDelete(true)}>
          Delete
        </button>
      </div>
      {showLog && <DeliveryLog key={logKey} endpoint={endpoint} />}
      <Modal open={confirmDelete} onClose={() => setConfirmDelete(false)} label="Delete webhook endpoint">
        <div className="modal-body">
          <h2>Delete this endpoint?</h2>
          <p>
            Atelier stops sending events to <strong>{endpoint.url}</strong> and its delivery log is deleted.
          </p>
          <div className="row end">
            <button type="button" className="btn" onClick={() => setConfirmDelete(false)} data-autofocus>
              Cancel
            </button>
            <button
              type="button"
              className="btn btn-danger"
              disabled={busy}
              onClick={() =>
                void act(async () => {
                  await api.invoke('webhooks:delete', { id: endpoint.id });
                  setConfirmDelete(false);
                  await onChanged();
                })
              }
            >
              Delete endpoint
            </button>
          </div>
        </div>
      </Modal>
    </li>
  );
}

export function WebhooksPanel() {
  const { api } = useStores();
  const [endpoints, setEndpoints] = useState<WebhookEndpoint[] | null>(null);
  const [loadError, setLoadError] = useState<string | null>(null);
  const [url, setUrl] = useState('');
  const [events, setEvents] = useState<WebhookEventType[]>(['generation.succeeded']);
  const [formError, setFormError] = useState<string | null>(null);
  const [adding, setAdding] = useState(false);
  const [secret, setSecret] = useState<{ url: string; value: string } | null>(null);

  const refresh = useCallback(async () => {
    try {
      setEndpoints((await api.invoke('webhooks:list', {})).items);
      setLoadError(null);
    } catch (e) {
      setLoadError(userMessageOf(e));
    }
  }, [api]);
  useEffect(() => {
    void refresh();
  }, [refresh]);

  const add = async (e: FormEvent) => {
    e.preventDefault();
    if (!url.trim() || events.length === 0) {
      setFormError(!url.trim() ? 'Enter the URL of your receiver.' : 'Choose at least one event.');
      return;
    }
    setAdding(true);
    setFormError(null);
    try {
      const created = await api.invoke('webhooks:create', { url: url.trim(), events });
      setSecret({ url: created.url, value: created.secret });
      setUrl('');
      await refresh();
    } catch (err) {
      const fields = fieldErrorsOf(err);
      setFormError(fields ? Object.values(fields).join(' ') : userMessageOf(err));
    } finally {
      setAdding(false);
    }
  };

  return (
    <section aria-labelledby="webhooks-title" className="account-section" data-testid="webhooks-panel">
      <h2 id="webhooks-title">Webhooks</h2>
      <p className="muted small">
        Atelier Cloud can call your server when something happens. Each request is signed; see docs/WEBHOOKS.md to
        verify it.
      </p>
      <form className="webhook-form" onSubmit={(e) => void add(e)} noValidate>
        <div className="field">
          <label htmlFor="webhook-url">Endpoint URL</label>
          <input
            id="webhook-url"
            type="url"
            placeholder="https://example.com/hooks/atelier"
            value={url}
            onChange={(e) => setUrl(e.target.value)}
          />
        </div>
        <fieldset className="field">
          <legend>Events</legend>
          {WEBHOOK_EVENT_TYPES.map((t) => (
            <label key={t} className="field-inline">
              <input
                type="checkbox"
                checked={events.includes(t)}
                onChange={(e) => setEvents((prev) => (e.target.checked ? [...prev, t] : prev.filter((x) => x !== t)))}
              />
              {EVENT_LABELS[t]}
            </label>
          ))}
        </fieldset>
        {formError && (
          <p className="error-text" role="alert">
            {formError}
          </p>
        )}
        <button type="submit" className="btn btn-primary" disabled={adding}>
          {adding ? 'Adding…' : 'Add endpoint'}
        </button>
      </form>
      {loadError ? (
        <p className="error-text" role="alert">
          {loadError}
        </p>
      ) : endpoints === null ? (
        <p role="status">Loading…</p>
      ) : endpoints.length === 0 ? (
        <p className="muted small">No endpoints yet.</p>
      ) : (
        <ul className="webhook-endpoints">
          {endpoints.map((ep) => (
            <EndpointRow key={ep.id} endpoint={ep} onChanged={refresh} onSecret={setSecret} />
          ))}
        </ul>
      )}
      <SecretOnce secret={secret} onClose={() => setSecret(null)} />
    </section>
  );
}
