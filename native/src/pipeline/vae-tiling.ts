/**
 * Tiled VAE decoding. The VAE decoder's mid-block attention is quadratic in the number of latent
 * pixels (a 2048×2048 image has 65,536 of them: one float32 score matrix alone is 17 GB), and its
 * full-resolution convolutions grow with the image. Decoding overlapping latent tiles and blending
 * them bounds both by the tile size, whatever the image size. Overlaps are blended with linear
 * weights that fall to near zero at a tile's inner edges, so seams do not show.
 */

/** A tile size and overlap, in latent pixels (×8 in image pixels for SD VAEs). */
export interface TileSpec {
  size: number;
  overlap: number;
}

/** Start offsets of tiles of `size` covering [0, length) with at least `overlap` between neighbours. */
export function tileStarts(length: number, size: number, overlap: number): number[] {
  if (length <= size) return [0];
  const stride = Math.max(1, size - overlap);
  const starts: number[] = [];
  for (let s = 0; s + size < length; s += stride) starts.push(s);
  // The last tile ends at the edge (a full tile, not a sliver), overlapping its neighbour more.
  starts.push(length - size);
  return starts;
}

/** How many tiles a latent of lh×lw is decoded in. */
export function tileCount(lh: number, lw: number, spec: TileSpec): number {
  return tileStarts(lh, spec.size, spec.overlap).length * tileStarts(lw, spec.size, spec.overlap).length;
}

export interface DecodedTile {
  /** Planar [channels, height, width] in the decoder's output range. */
  data: Float32Array;
  channels: number;
  height: number;
  width: number;
}

/**
 * Decodes `latents` (planar [c, lh, lw]) tile by tile with `decode` and blends the results.
 * `beforeTile` runs before each tile (the caller checks cancellation there); `afterTile` after.
 */
export async function decodeTiled(
  latents: Float32Array,
  c: number,
  lh: number,
  lw: number,
  spec: TileSpec,
  decode: (tile: Float32Array, th: number, tw: number) => Promise<DecodedTile>,
  hooks: {
    beforeTile?: (index: number, total: number) => void;
    afterTile?: (index: number, total: number) => void;
  } = {},
): Promise<DecodedTile> {
  const ys = tileStarts(lh, spec.size, spec.overlap);
  const xs = tileStarts(lw, spec.size, spec.overlap);
  const total = ys.length * xs.length;
  let acc: Float32Array | null = null;
  let weights: Float32Array | null = null;
  let outC = 0;
  let scale = 0;
  let H = 0;
  let W = 0;
  let index = 0;
  for (const y0 of ys) {
    const th = Math.min(spec.size, lh - y0);
    for (const x0 of xs) {
      const tw = Math.min(spec.size, lw - x0);
      hooks.beforeTile?.(index, total);
      const input = new Float32Array(c * th * tw);
      for (let ch = 0; ch < c; ch++)
        for (let y = 0; y < th; y++) {
          const src = ch * lh * lw + (y0 + y) * lw + x0;
          input.set(latents.subarray(src, src + tw), ch * th * tw + y * tw);
        }
      const out = await decode(input, th, tw);
      if (!acc) {
        scale = out.height / th;
        if (!Number.isInteger(scale) || out.width / tw !== scale)
          throw new Error(`VAE decoder output ${out.width}×${out.height} is not a whole multiple of ${tw}×${th}`);
        outC = out.channels;
        H = lh * scale;
        W = lw * scale;
        acc = new Float32Array(outC * H * W);
        weights = new Float32Array(H * W);
      }
      const ramp = spec.overlap * scale;
      const wy = edgeWeights(out.height, ramp, y0 > 0, y0 + th < lh);
      const wx = edgeWeights(out.width, ramp, x0 > 0, x0 + tw < lw);
      const oy = y0 * scale;
      const ox = x0 * scale;
      const plane = out.height * out.width;
      for (let y = 0; y < out.height; y++) {
        const row = (oy + y) * W + ox;
        for (let x = 0; x < out.width; x++) {
          const w = wy[y]! * wx[x]!;
          weights![row + x]! += w;
          const p = y * out.width + x;
          for (let ch = 0; ch < outC; ch++) acc[ch * H * W + row + x]! += w * out.data[ch * plane + p]!;
        }
      }
      hooks.afterTile?.(index, total);
      index++;
    }
  }
  const n = H * W;
  for (let p = 0; p < n; p++) {
    const inv = 1 / weights![p]!;
    for (let ch = 0; ch < outC; ch++) acc![ch * n + p]! *= inv;
  }
  return { data: acc!, channels: outC, height: H, width: W };
}

/** Per-pixel weights along one tile axis: 1 inside, ramping down over `ramp` pixels at sides that have a neighbour. */
function edgeWeights(length: number, ramp: number, before: boolean, after: boolean): Float32Array {
  const w = new Float32Array(length).fill(1);
  if (ramp <= 0) return w;
  for (let i = 0; i < length; i++) {
    let v = 1;
    if (before) v = Math.min(v, (i + 0.5) / ramp);
    if (after) v = Math.min(v, (length - i - 0.5) / ramp);
    w[i] = v;
  }
  return w;
}
