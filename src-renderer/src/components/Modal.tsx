import { useEffect, useRef, type KeyboardEvent, type ReactNode } from 'react';
import { useStores } from '../stores/index.ts';

const FOCUSABLE =
  'a[href], button:not([disabled]), input:not([disabled]), select:not([disabled]), textarea:not([disabled]), [tabindex]:not([tabindex="-1"])';

function focusables(root: HTMLElement): HTMLElement[] {
  return [...root.querySelectorAll<HTMLElement>(FOCUSABLE)].filter((el) => el.offsetParent !== null);
}

/**
 * A native modal <dialog>: it takes focus when it opens (the element marked `data-autofocus`, else
 * the first control), Tab and Shift+Tab cycle inside it, Esc closes, the page behind is inert, and
 * focus goes back where it was on close. While open it hosts the toasts, which would otherwise
 * sit under it (a modal dialog is in the top layer, above any z-index).
 */
export function Modal({
  open,
  onClose,
  label,
  className,
  children,
}: {
  open: boolean;
  onClose: () => void;
  label: string;
  className?: string;
  children: ReactNode;
}) {
  const ref = useRef<HTMLDialogElement>(null);
  const { app } = useStores();
  useEffect(() => {
    const d = ref.current;
    if (!d) return;
    if (open && !d.open) {
      const before = document.activeElement as HTMLElement | null;
      d.showModal();
      app.getState().pushOverlay(d);
      const target = d.querySelector<HTMLElement>('[data-autofocus]') ?? focusables(d)[0] ?? d;
      // After the event that opened it: a key that opened the dialog must not also press the
      // control that now has focus.
      const t = setTimeout(() => target.focus(), 0);
      return () => {
        clearTimeout(t);
        app.getState().popOverlay(d);
        if (d.open) d.close();
        before?.focus?.();
      };
    }
    if (!open && d.open) d.close();
    return undefined;
  }, [open, app]);
  const onKeyDown = (e: KeyboardEvent<HTMLDialogElement>) => {
    if (e.key !== 'Tab' || !ref.current) return;
    const list = focusables(ref.current);
    if (list.length === 0) {
      e.preventDefault();
      return;
    }
    const first = list[0]!;
    const last = list[list.length - 1]!;
    const at = document.activeElement;
    if (e.shiftKey && (at === first || !ref.current.contains(at))) {
      e.preventDefault();
      last.focus();
    } else if (!e.shiftKey && (at === last || !ref.current.contains(at))) {
      e.preventDefault();
      first.focus();
    }
  };
  return (
    <dialog
      ref={ref}
      aria-label={label}
      aria-modal="true"
      className={`modal ${className ?? ''}`}
      tabIndex={-1}
      onKeyDown={onKeyDown}
      onCancel={(e) => {
        e.preventDefault();
        onClose();
      }}
      onClick={(e) => {
        if (e.target === ref.current) onClose();
      }}
    >
      {open && children}
    </dialog>
  );
}
