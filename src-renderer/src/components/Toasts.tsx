import { useEffect } from 'react';
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
  return (
    <div className="toasts" aria-live="polite">
      {toasts.map((t) => (
        <ToastView key={t.id} toast={t} />
      ))}
    </div>
  );
}
