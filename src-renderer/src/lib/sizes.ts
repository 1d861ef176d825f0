export interface SizePreset {
  id: string;
  label: string;
  width: number;
  height: number;
}

export const SIZE_PRESETS: readonly SizePreset[] = [
  { id: '512x512', label: '512 × 512 (square)', width: 512, height: 512 },
  { id: '768x768', label: '768 × 768 (square)', width: 768, height: 768 },
  { id: '512x768', label: '512 × 768 (portrait)', width: 512, height: 768 },
  { id: '768x512', label: '768 × 512 (landscape)', width: 768, height: 512 },
];

/** The size preset of a model that declares the size it was trained at (e.g. the 64 × 64 demo model). */
export const NATIVE_SIZE = 'native';

export function presetFor(width: number, height: number): string {
  return SIZE_PRESETS.find((p) => p.width === width && p.height === height)?.id ?? 'custom';
}

/** Rounds a typed dimension to the nearest multiple of 8 inside the engine's range. */
export function snapDimension(value: number): number {
  if (!Number.isFinite(value)) return 512;
  return Math.max(64, Math.min(2048, Math.round(value / 8) * 8));
}
