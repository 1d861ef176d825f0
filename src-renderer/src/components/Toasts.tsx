import { useEffect } from 'react';
import { createPortal } from 'react-dom';
import { useS, useStores } from '../stores/index.ts';
import type { Toast } from '../stores/app.ts';

function ToastView({ toast }: { toast: Toast }) {
  const { app } = useStores();
  const dismiss = () => app.getState().dismiss(toast.id);
  useEffect(() => {
    if (toast.timeoutMs === null) return;
    const t = setTimeout(() => app.getState().dismiss(toast.id), toast.timeoutMs);
    return () => clearTimeout(t);
  }, [toast.id, toast.timeoutMs, app]);
  return (
    <div className={`toast toast-${toast.kind}`} role={toast.kind === 'error' ? 'alert' : 'status'}>
      <span className="toast-message">{toast.message}</span>
      {toast.action && (
        <button
          type="button"
          className="btn btn-link"
          onClick={() => {
            toast.action!.run();
            dismiss();
          }}
        >
          {toast.action.label}
        </button>
      )}
      <button type="button" className="btn btn-icon" aria-label="Dismiss notification" onClick={dismiss}>
        ×
      </button>
    </div>
  );
}

export function Toasts() {
  const { app } = useStores();
  const toasts = useS(app, (s) => s.toasts);
  // Inside the open modal when there is one: the modal is in the top layer and makes the rest of
  // the page inert, so toasts outside it would be hidden under it and their buttons unreachable.
  const host = useS(app, (s) => s.overlays.at(-1) ?? null);
  const list = (
    <div className="toasts" aria-live="polite" data-testid="toasts">
      {toasts.map((t) => (
        <ToastView key={t.id} toast={t} />
      ))}
    </div>
  );
  return host ? createPortal(list, host) : list;
}
