import type { AccountState, PlanId } from '@atelier/common';
import { PLANS } from '@atelier/common';

export function planName(plan: PlanId | null): string {
  return plan ? PLANS[plan].name : 'Not signed in';
}

export interface UsageView {
  used: number;
  limit: number;
  left: number;
  /** 0..1 */
  fraction: number;
  label: string;
  periodEndLabel: string;
  exhausted: boolean;
}

export function usageView(usage: AccountState['usage'], locale?: string): UsageView | null {
  if (!usage) return null;
  const left = Math.max(0, usage.limit - usage.used);
  const end = new Date(usage.periodEnd);
  const periodEndLabel = Number.isNaN(end.getTime())
    ? usage.periodEnd
    : end.toLocaleDateString(locale, { year: 'numeric', month: 'long', day: 'numeric', timeZone: 'UTC' });
  return {
    used: usage.used,
    limit: usage.limit,
    left,
    fraction: usage.limit > 0 ? Math.min(1, usage.used / usage.limit) : 1,
    label: `${usage.used} of ${usage.limit} cloud images used`,
    periodEndLabel,
    exhausted: left === 0,
  };
}

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KB', 'MB', 'GB', 'TB'];
  let v = bytes / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[u]}`;
}

export function percent(step: number, total: number): number {
  if (total <= 0) return 0;
  return Math.max(0, Math.min(100, Math.round((step / total) * 100)));
}

export function formatDateTime(iso: string, locale?: string): string {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString(locale, { dateStyle: 'medium', timeStyle: 'short' });
}

/**
 * Progress in words. `step`/`total` count steps over the whole batch (the engine and the cloud
 * report them that way); a batch says which image it is on: "image 1 of 2 · step 22 of 50".
 */
export function progressLabel(
  step: number,
  total: number,
  count: number,
  decode?: { tile: number; tiles: number },
): string {
  if (total <= 0) return 'Starting…';
  if (decode) return `${stepsLabel(step, total, count)} · decoding tile ${decode.tile} of ${decode.tiles}`;
  return stepsLabel(step, total, count);
}

function stepsLabel(step: number, total: number, count: number): string {
  const images = Math.max(1, count);
  if (images === 1 || total % images !== 0) return `Step ${step} of ${total}`;
  const perImage = total / images;
  const image = Math.min(images, Math.max(1, Math.ceil(step / perImage)));
  const within = Math.max(0, step - (image - 1) * perImage);
  return `Image ${image} of ${images} · step ${within} of ${perImage}`;
}

export const FIXTURE_LABEL = 'Test fixture: random weights, it draws noise';

/** A model's name as every list shows it: fixtures say so. */
export function modelLabel(m: { name: string; fixture?: boolean | undefined }): string {
  return m.fixture ? `${m.name} (test fixture, draws noise)` : m.name;
}

/**
 * A small model's caption vocabulary as one line ("shapes: circle, square; colours: red, blue"),
 * or '' for an open-vocabulary model.
 */
export function vocabularyLine(vocabulary: Record<string, string[]> | null | undefined): string {
  if (!vocabulary) return '';
  return Object.entries(vocabulary)
    .filter(([, words]) => words.length > 0)
    .map(([kind, words]) => `${kind}: ${words.join(', ')}`)
    .join('; ');
}
