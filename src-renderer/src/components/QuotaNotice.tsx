/**
 * Low-quota notices at 80 % and 100 % of the plan's cloud images: each shows once per period
 * (closing it is remembered by the app, across restarts), and a notice for 100 % replaces the one
 * for 80 %. Free users get Upgrade when the server sells Pro; everyone can open the Account chart.
 */
import { quotaNoticeLevel, type DismissedNotice } from '@atelier/common';
import { useEffect, useState, type KeyboardEvent } from 'react';
import { usageView } from '../lib/format.ts';
import { useBilling } from '../screens/AccountScreen.tsx';
import { useS, useStores } from '../stores/index.ts';
import './usage.css';

export function QuotaNotice() {
  const s = useStores();
  const account = useS(s.account, (x) => x.state);
  const [dismissed, setDismissed] = useState<DismissedNotice[] | null>(null);
  const { run } = useBilling();
  const signedIn = account?.signedIn ?? false;

  useEffect(() => {
    if (!signedIn) return;
    s.api.invoke('usage:dismissedNotices', {}).then(
      (r) => setDismissed(r.items),
      () => setDismissed([]),
    );
  }, [s.api, signedIn, account?.email]);

  const usage = account?.usage ?? null;
  if (!signedIn || !usage || dismissed === null) return null;
  const level = quotaNoticeLevel(usage.used, usage.limit);
  // Marks that the check ran for this usage (tests wait on it before they expect no notice).
  const checked = <span hidden data-testid="quota-notice-checked" data-used={usage.used} />;
  if (level === null) return checked;
  if (dismissed.some((d) => d.periodStart === usage.periodStart && d.level >= level)) return checked;

  const view = usageView(usage)!;
  const dismiss = () => {
    const notice = { periodStart: usage.periodStart, level };
    setDismissed((d) => [...(d ?? []), notice]);
    s.api.invoke('usage:dismissNotice', notice).catch((e: unknown) => s.app.getState().reportError(e));
  };
  const onKey = (e: KeyboardEvent) => {
    if (e.key === 'Escape') {
      e.preventDefault();
      dismiss();
    }
  };
  const canUpgrade = account?.plan === 'free' && account.billing?.available === true;
  return (
    <div
      className={`banner banner-warning quota-notice quota-notice-${level}`}
      role="status"
      data-testid="quota-notice"
      data-level={level}
      onKeyDown={onKey}
    >
      <span>
        {level === 100
          ? `You have used all ${usage.limit} cloud images this period. Cloud runs resume on ${view.periodEndLabel}; this computer can still run them.`
          : `You have used ${usage.used} of ${usage.limit} cloud images this period (${Math.floor((usage.used * 100) / usage.limit)} %). ${view.left} left until ${view.periodEndLabel}.`}
      </span>
      <span className="quota-notice-actions">
        {canUpgrade && (
          <button type="button" className="btn btn-primary" onClick={() => void run('upgrade')}>
            Upgrade
          </button>
        )}
        <button type="button" className="btn" onClick={() => s.app.getState().navigate('account')}>
          See usage
        </button>
        <button type="button" className="btn" aria-label="Dismiss this notice" onClick={dismiss}>
          Dismiss
        </button>
      </span>
    </div>
  );
}
