/**
 * Cloud images per day, drawn as our own SVG (decision 0180: no chart library — one chart, a few
 * dozen shapes, and full control over keyboard focus and labels). Top: the cumulative count of
 * the current period against the plan limit, with the previous period's line for comparison.
 * Bottom: one column per day, stacked by where the images ran. Each day is a focusable bar
 * (←/→/Home/End move between days) whose label and tooltip say its numbers in words.
 */
import { useId, useMemo, useState, type KeyboardEvent } from 'react';
import { dayLabel, type ChartModel } from '../lib/usage-chart.ts';

// viewBox units; the figure scales to the panel's width (about 440 px in the Account screen).
const W = 480;
const H = 236;
const PAD_L = 34;
const PAD_R = 8;
const TOP = { y0: 18, y1: 118 };
const BOTTOM = { y0: 136, y1: 212 };

export function UsageChart({ model, locale }: { model: ChartModel; locale?: string }) {
  const titleId = useId();
  const descId = useId();
  const tipId = useId();
  const n = model.days.length;
  const band = (W - PAD_L - PAD_R) / n;
  const x = (i: number) => PAD_L + i * band;
  const yCum = (v: number) => TOP.y1 - (v / model.maxCumulative) * (TOP.y1 - TOP.y0);
  const yBar = (v: number) => (v / model.maxDaily) * (BOTTOM.y1 - BOTTOM.y0);
  const todayIndex = Math.max(
    0,
    model.days.reduce((last, d, i) => (d.cumulative !== null ? i : last), 0),
  );
  const [active, setActive] = useState<number | null>(null);
  const [focusIndex, setFocusIndex] = useState(todayIndex);
  const labels = useMemo(() => model.days.map((d) => dayLabel(d, model.limit, locale)), [model, locale]);

  const line = (values: (number | null)[]) =>
    values
      .map((v, i) => (v === null ? null : `${x(i) + band / 2},${yCum(v)}`))
      .filter((p): p is string => p !== null)
      .join(' ');
  const current = line(model.days.map((d) => d.cumulative));
  const previous = line(model.days.map((d) => d.previousCumulative));

  const move = (e: KeyboardEvent<SVGGElement>, i: number) => {
    const to =
      e.key === 'ArrowRight'
        ? Math.min(n - 1, i + 1)
        : e.key === 'ArrowLeft'
          ? Math.max(0, i - 1)
          : e.key === 'Home'
            ? 0
            : e.key === 'End'
              ? n - 1
              : null;
    if (to === null) return;
    e.preventDefault();
    setFocusIndex(to);
    setActive(to);
    (e.currentTarget.parentElement?.children[to] as SVGGElement | undefined)?.focus();
  };

  const tip = active === null ? null : model.days[active];
  const firstLabel = new Date(`${model.days[0]!.date}T00:00:00Z`).toLocaleDateString(locale, {
    month: 'short',
    day: 'numeric',
    timeZone: 'UTC',
  });
  const lastLabel = new Date(`${model.days[n - 1]!.date}T00:00:00Z`).toLocaleDateString(locale, {
    month: 'short',
    day: 'numeric',
    timeZone: 'UTC',
  });

  return (
    <figure className="usage-chart" data-testid="usage-chart">
      <svg
        viewBox={`0 0 ${W} ${H}`}
        role="group"
        aria-labelledby={titleId}
        aria-describedby={descId}
        onMouseLeave={() => setActive(null)}
      >
        <title id={titleId}>Cloud images per day this period</title>
        <desc id={descId}>
          {`${model.used} of ${model.limit} cloud images used, ${model.left} left. Last period: ${model.previousUsed}. ` +
            'Each day is a bar you can reach with Tab and move through with the arrow keys.'}
        </desc>
        {/* Cumulative panel: the limit, last period, this period. */}
        <line className="uc-axis" x1={PAD_L} x2={W - PAD_R} y1={TOP.y1} y2={TOP.y1} />
        <line
          className="uc-limit"
          data-testid="usage-limit-line"
          x1={PAD_L}
          x2={W - PAD_R}
          y1={yCum(model.limit)}
          y2={yCum(model.limit)}
        />
        <text className="uc-label" x={PAD_L - 6} y={yCum(model.limit) + 4} textAnchor="end">
          {model.limit}
        </text>
        <text className="uc-label" x={W - PAD_R} y={yCum(model.limit) - 6} textAnchor="end">
          Plan limit
        </text>
        <text className="uc-label" x={PAD_L - 6} y={TOP.y1 + 4} textAnchor="end">
          0
        </text>
        {previous && <polyline className="uc-previous" points={previous} data-testid="usage-previous-line" />}
        {current && <polyline className="uc-cumulative" points={current} data-testid="usage-cumulative-line" />}
        {/* Daily panel. */}
        <line className="uc-axis" x1={PAD_L} x2={W - PAD_R} y1={BOTTOM.y1} y2={BOTTOM.y1} />
        <text className="uc-label" x={PAD_L - 6} y={BOTTOM.y0 + 4} textAnchor="end">
          {model.maxDaily}
        </text>
        <text className="uc-label" x={PAD_L} y={H - 8}>
          {firstLabel}
        </text>
        <text className="uc-label" x={W - PAD_R} y={H - 8} textAnchor="end">
          {lastLabel}
        </text>
        <g role="list" aria-label="Days">
          {model.days.map((d, i) => {
            const stack: [string, number][] = [
              ['uc-desktop', Math.max(0, d.desktop)],
              ['uc-api', Math.max(0, d.api)],
              ['uc-local', d.local],
            ];
            let top = BOTTOM.y1;
            return (
              <g
                key={d.date}
                role="listitem"
                aria-label={labels[i]}
                aria-describedby={active === i ? tipId : undefined}
                tabIndex={i === focusIndex ? 0 : -1}
                className={`uc-day ${active === i ? 'uc-active' : ''} ${d.cumulative === null ? 'uc-future' : ''}`}
                data-testid="usage-day"
                data-date={d.date}
                data-desktop={d.desktop}
                data-api={d.api}
                data-local={d.local}
                onFocus={() => {
                  setFocusIndex(i);
                  setActive(i);
                }}
                onBlur={() => setActive((a) => (a === i ? null : a))}
                onMouseEnter={() => setActive(i)}
                onKeyDown={(e) => move(e, i)}
              >
                {/* The whole column is the target, so thin bars are easy to point at. */}
                <rect className="uc-hit" x={x(i)} y={TOP.y0} width={band} height={BOTTOM.y1 - TOP.y0} />
                {stack.map(([cls, v]) => {
                  if (v <= 0) return null;
                  const h = yBar(v);
                  top -= h;
                  return (
                    <rect key={cls} className={cls} x={x(i) + band * 0.15} y={top} width={band * 0.7} height={h} />
                  );
                })}
              </g>
            );
          })}
        </g>
      </svg>
      {tip && (
        <div
          id={tipId}
          role="tooltip"
          className="uc-tooltip"
          data-testid="usage-tooltip"
          style={{
            left: `${((x(active!) + band / 2) / W) * 100}%`,
          }}
        >
          {labels[active!]}
        </div>
      )}
      <figcaption>
        <ul className="uc-legend">
          <li>
            <span className="uc-swatch uc-desktop" aria-hidden="true" /> Cloud, from the app
          </li>
          <li>
            <span className="uc-swatch uc-api" aria-hidden="true" /> Cloud, by API
          </li>
          <li>
            <span className="uc-swatch uc-local" aria-hidden="true" /> On this computer (not counted)
          </li>
          <li>
            <span className="uc-swatch uc-line" aria-hidden="true" /> Used so far
          </li>
          <li>
            <span className="uc-swatch uc-line-previous" aria-hidden="true" /> Last period
          </li>
          <li>
            <span className="uc-swatch uc-line-limit" aria-hidden="true" /> Plan limit
          </li>
        </ul>
      </figcaption>
    </figure>
  );
}
