import type { AccountState } from '@atelier/common';
import { useId } from 'react';
import { usageView } from '../lib/format.ts';

export function UsageMeter({ usage, compact = false }: { usage: AccountState['usage']; compact?: boolean }) {
  const id = useId();
  const v = usageView(usage);
  if (!v) return null;
  return (
    <div className={`usage ${compact ? 'usage-compact' : ''}`}>
      <div className="usage-head">
        <span id={id}>{v.label}</span>
        {!compact && <span className="muted">Resets {v.periodEndLabel}</span>}
      </div>
      <meter
        aria-labelledby={id}
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
