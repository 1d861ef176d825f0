import type { AccountState } from '@atelier/common';
import { usageView } from '../lib/format.ts';

export function UsageMeter({ usage, compact = false }: { usage: AccountState['usage']; compact?: boolean }) {
  const v = usageView(usage);
  if (!v) return null;
  return (
    <div className={`usage ${compact ? 'usage-compact' : ''}`}>
      <div className="usage-head">
        <span id="usage-label">{v.label}</span>
        {!compact && <span className="muted">Resets {v.periodEndLabel}</span>}
      </div>
      <meter
        aria-labelledby="usage-label"
        min={0}
        max={v.limit}
        low={v.limit * 0.75}
        high={v.limit * 0.9}
        optimum={0}
        value={v.used}
      />
      {!compact && (
        <p className="muted" data-testid="usage-left">
          {v.left} cloud images left this period
        </p>
      )}
    </div>
  );
}
