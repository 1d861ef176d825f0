/** The Account screen's usage chart: loads `usage:daily` and reloads whenever the cloud usage changes. */
import type { UsageChartData } from '@atelier/common';
import { useCallback, useEffect, useMemo, useState } from 'react';
import { userMessageOf } from '../lib/field-errors.ts';
import { chartModel } from '../lib/usage-chart.ts';
import { useS, useStores } from '../stores/index.ts';
import { UsageChart } from './UsageChart.tsx';
import './usage.css';

export function UsagePanel() {
  const s = useStores();
  const account = useS(s.account, (x) => x.state);
  const [data, setData] = useState<UsageChartData | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [loading, setLoading] = useState(false);
  // Reload on every change of the count the meter shows (a generation, a refund, another device).
  const used = account?.usage?.used;
  const online = account?.online;

  const load = useCallback(async () => {
    setLoading(true);
    try {
      setData(await s.api.invoke('usage:daily', {}));
      setError(null);
    } catch (e) {
      setError(userMessageOf(e));
    } finally {
      setLoading(false);
    }
  }, [s.api]);

  useEffect(() => {
    if (online) void load();
  }, [load, used, online]);

  const model = useMemo(() => (data ? chartModel(data, new Date().toISOString().slice(0, 10)) : null), [data]);

  if (!account?.signedIn) return null;
  return (
    <div className="usage-panel" aria-busy={loading}>
      {model && <UsageChart model={model} />}
      {model && (
        <p className="muted small" data-testid="usage-chart-summary">
          This period: {model.used} of {model.limit} cloud images used, {model.left} left. Last period:{' '}
          {model.previousUsed} of {model.previousLimit}.
        </p>
      )}
      {!model && !error && loading && <p className="muted small">Loading your usage…</p>}
      {error && (
        <p className="callout callout-warning" role="alert">
          The usage chart could not be loaded: {error}{' '}
          <button type="button" className="btn" onClick={() => void load()}>
            Try again
          </button>
        </p>
      )}
    </div>
  );
}
