/**
 * A pixel-statistics reader for the demo model's pictures: one shape in a plain colour on a plain
 * background. It says what a person would say looking at the image — the background colour, the
 * shape's colour, which shape (fill ratio of its bounding box and the vertical skew of its mass)
 * and where it is — so the semantic tests can compare a picture with the prompt that asked for it.
 *
 * It knows nothing about the model: colours are the named colours of the demo vocabulary, matched
 * by nearest reference colour, and the geometry thresholds come from what the three shapes are.
 */
import type { RawImage } from '../src/png/png.ts';

/** Reference sRGB values of the demo vocabulary's colour names. */
export const PALETTE = {
  red: [220, 30, 30],
  green: [30, 170, 60],
  blue: [30, 70, 220],
  yellow: [240, 220, 30],
  white: [245, 245, 245],
  black: [20, 20, 20],
} as const satisfies Record<string, readonly [number, number, number]>;
export type ColourName = keyof typeof PALETTE;
export const COLOUR_NAMES = Object.keys(PALETTE) as ColourName[];
export const SHAPE_NAMES = ['circle', 'square', 'triangle'] as const;
export type ShapeName = (typeof SHAPE_NAMES)[number];
export const POSITION_NAMES = ['center', 'top left', 'top right', 'bottom left', 'bottom right'] as const;
export type PositionName = (typeof POSITION_NAMES)[number];

export interface Reading {
  background: ColourName;
  /** null when no region of another colour is big enough to be a shape. */
  colour: ColourName | null;
  shape: ShapeName | null;
  position: PositionName | null;
  /** Pixels of the shape. */
  area: number;
  /** Shape area / bounding-box area: ≈ 0.79 circle, ≈ 1 square, ≈ 0.5 triangle. */
  fill: number;
  /** (centroid y − bounding-box centre y) / box height: > 0 when the mass sits low (a triangle apex up). */
  skew: number;
}

/** Fewer shape pixels than this (of 4096 at 64×64, scaled by the image area) means "no shape". */
const MIN_SHAPE_FRACTION = 40 / 4096;

function nearest(r: number, g: number, b: number): number {
  let best = 0;
  let bestD = Infinity;
  for (let i = 0; i < COLOUR_NAMES.length; i++) {
    const [pr, pg, pb] = PALETTE[COLOUR_NAMES[i]!];
    const d = (r - pr) ** 2 + (g - pg) ** 2 + (b - pb) ** 2;
    if (d < bestD) {
      bestD = d;
      best = i;
    }
  }
  return best;
}

export function readPicture(img: RawImage): Reading {
  const { width: w, height: h, channels, data } = img;
  const cls = new Uint8Array(w * h);
  for (let p = 0; p < w * h; p++)
    cls[p] = nearest(data[p * channels]!, data[p * channels + 1]!, data[p * channels + 2]!);

  // The background: the commonest colour on a 2-pixel frame round the picture (shapes keep clear of it).
  const frame = new Array<number>(COLOUR_NAMES.length).fill(0);
  const m = Math.max(1, Math.round(Math.min(w, h) / 32));
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) if (x < m || y < m || x >= w - m || y >= h - m) frame[cls[y * w + x]!]!++;
  const bg = frame.indexOf(Math.max(...frame));

  // The shape: the commonest other colour; its pixels form the mask.
  const counts = new Array<number>(COLOUR_NAMES.length).fill(0);
  for (let p = 0; p < w * h; p++) if (cls[p] !== bg) counts[cls[p]!]!++;
  counts[bg] = 0;
  const top = Math.max(...counts);
  const background = COLOUR_NAMES[bg]!;
  if (top < MIN_SHAPE_FRACTION * w * h)
    return { background, colour: null, shape: null, position: null, area: top, fill: 0, skew: 0 };
  const fg = counts.indexOf(top);

  let area = 0;
  let sy = 0;
  let x0 = w;
  let y0 = h;
  let x1 = -1;
  let y1 = -1;
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      if (cls[y * w + x] !== fg) continue;
      area++;
      sy += y;
      if (x < x0) x0 = x;
      if (x > x1) x1 = x;
      if (y < y0) y0 = y;
      if (y > y1) y1 = y;
    }
  const bw = x1 - x0 + 1;
  const bh = y1 - y0 + 1;
  const fill = area / (bw * bh);
  const skew = (sy / area - (y0 + y1) / 2) / bh;
  // A triangle fills half its box and carries its mass low; a circle fills π/4; a square all of it.
  const shape: ShapeName =
    fill < 0.64 || (fill < 0.74 && skew > 0.06) ? 'triangle' : fill >= 0.88 ? 'square' : 'circle';

  // Position by the centre of the bounding box, relative to the picture's centre (5/64 of the side
  // tolerance: a centred shape stays within it, a shape in a corner is pushed ≥ 10/64 out).
  const cx = (x0 + x1 + 1) / 2 / w - 0.5;
  const cy = (y0 + y1 + 1) / 2 / h - 0.5;
  const tol = 5 / 64;
  let position: PositionName | null;
  if (Math.abs(cx) < tol && Math.abs(cy) < tol) position = 'center';
  else if (Math.abs(cx) >= tol && Math.abs(cy) >= tol)
    position = `${cy < 0 ? 'top' : 'bottom'} ${cx < 0 ? 'left' : 'right'}` as PositionName;
  else position = null; // off-centre on one axis only: not one of the five named places
  return { background, colour: COLOUR_NAMES[fg]!, shape, position, area, fill, skew };
}

/** What a prompt of the demo vocabulary asks for; absent attributes are not checked. */
export interface Ask {
  colour?: ColourName;
  shape?: ShapeName;
  background?: ColourName;
  position?: PositionName;
}

/** The attributes of `ask` the picture gets wrong (empty = the picture agrees with the prompt). */
export function disagreements(reading: Reading, ask: Ask): string[] {
  const wrong: string[] = [];
  for (const key of ['colour', 'shape', 'background', 'position'] as const) {
    const want = ask[key];
    if (want !== undefined && reading[key] !== want)
      wrong.push(`${key}: wanted ${want}, saw ${reading[key] ?? 'none'}`);
  }
  return wrong;
}
