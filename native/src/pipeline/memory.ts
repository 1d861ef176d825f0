/**
 * A job's memory, estimated before it starts, and the VAE decode plan that keeps it inside what
 * the machine has. The figures are upper-bound estimates of onnxruntime's peak working set for
 * plain (unfused) ONNX exports, where attention materialises its full score matrix:
 *
 * - weights: the ONNX files' sizes (sessions hold them in memory);
 * - UNet: self-attention scores at the full latent resolution (batch × heads × n² × 2 buffers)
 *   when the UNet's config declares attention heads (diffusers' UNet2DConditionModel always
 *   does), plus about a dozen live activations of the first block;
 * - VAE decode: the mid-block attention over the latent pixels (n² × 2 buffers) plus three live
 *   activations at the widest level, for the whole latent or for one tile.
 *
 * Channel counts come from the model's config.json files; when absent, from SD 1.5's scaled by the
 * square root of the weights' size against SD 1.5's (a smaller network is narrower).
 */
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { tileCount, type TileSpec } from './vae-tiling.ts';

export interface MemoryProfile {
  /** Bytes of the ONNX files (graphs and external weights) the sessions load. */
  weightsBytes: number;
  /** Channels of the UNet's first block. */
  unetChannels: number;
  /** Self-attention heads at full latent resolution; 0 when the UNet declares none. */
  unetHeads: number;
  /** VAE decoder channels from the full-resolution level down, e.g. [128, 256, 512, 512]. */
  vaeChannels: number[];
  /** Bytes per activation element: 2 for float16 exports, 4 for float32. */
  elementBytes: number;
}

export interface JobShape {
  width: number;
  height: number;
  guidance: number;
  count: number;
}

export interface MemoryEstimate {
  /** Peak bytes the job needs on top of what is already loaded. */
  requiredBytes: number;
  /** Bytes the machine has for it (the limit it was checked against). */
  availableBytes: number;
  weightsBytes: number;
  unetBytes: number;
  decodeBytes: number;
  /** The VAE decode tile (latent pixels), or null when the latent is decoded whole. */
  tile: TileSpec | null;
  /** Tiles per image (1 when decoded whole). */
  tiles: number;
  fits: boolean;
}

const SD15_UNET_BYTES = 3_438_167_536;
const SD15_VAE_BYTES = 198_078_000;
const SD15_VAE_CHANNELS = [128, 256, 512, 512];
/** The largest VAE tile, in latent pixels (512 image pixels for SD), as other SD front ends use. */
export const MAX_TILE = 64;
const TILE_SIZES = [MAX_TILE, 48, 32, 24, 16];

function dirBytes(dir: string): number {
  if (!existsSync(dir)) return 0;
  let total = 0;
  for (const name of readdirSync(dir)) {
    const file = path.join(dir, name);
    const st = statSync(file);
    if (st.isFile() && !name.endsWith('.json')) total += st.size;
  }
  return total;
}

function readConfig(file: string): Record<string, unknown> {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  } catch {
    return {};
  }
}

const numbers = (v: unknown): number[] | null =>
  Array.isArray(v) && v.length > 0 && v.every((x) => typeof x === 'number' && x > 0) ? (v as number[]) : null;

/** Reads a model folder's memory profile (file sizes and config.json fields; nothing is loaded). */
export function memoryProfile(dir: string, elementBytes = 4): MemoryProfile {
  const unetBytes = dirBytes(path.join(dir, 'unet'));
  const vaeBytes = dirBytes(path.join(dir, 'vae_decoder'));
  const weightsBytes = dirBytes(path.join(dir, 'text_encoder')) + unetBytes + vaeBytes;
  const unetCfg = readConfig(path.join(dir, 'unet/config.json'));
  const vaeCfg = readConfig(path.join(dir, 'vae_decoder/config.json'));
  const scaled = (base: number, bytes: number, ref: number) =>
    Math.max(1, Math.round(base * Math.min(1, Math.max(1 / 64, Math.sqrt(bytes / ref)))));
  const unetChannels = numbers(unetCfg.block_out_channels)?.[0] ?? scaled(320, unetBytes, SD15_UNET_BYTES);
  const heads = unetCfg.attention_head_dim;
  const unetHeads = typeof heads === 'number' ? heads : (numbers(heads)?.[0] ?? 0);
  const vaeChannels =
    numbers(vaeCfg.block_out_channels) ?? SD15_VAE_CHANNELS.map((c) => scaled(c, vaeBytes, SD15_VAE_BYTES));
  return { weightsBytes, unetChannels, unetHeads, vaeChannels, elementBytes };
}

/** Peak bytes of one VAE decode of a th×tw latent. */
export function decodeBytes(p: MemoryProfile, th: number, tw: number): number {
  const n = th * tw;
  const eb = p.elementBytes;
  const mid = p.vaeChannels.at(-1)!;
  const attention = 2 * n * n * eb + 4 * n * mid * eb;
  let conv = 0;
  // Level l runs at (8 / 2^l)² image pixels per latent pixel with vaeChannels[l] channels.
  p.vaeChannels.forEach((ch, l) => {
    const pixels = n * 64 * Math.pow(4, -l);
    conv = Math.max(conv, 3 * pixels * ch * eb);
  });
  return attention + conv;
}

/** Peak bytes of one UNet evaluation at lh×lw latent pixels. */
export function unetBytes(p: MemoryProfile, lh: number, lw: number, batch: number): number {
  const n = lh * lw;
  const eb = p.elementBytes;
  return batch * (2 * p.unetHeads * n * n * eb + 12 * n * p.unetChannels * eb + 77 * n * 8 * eb);
}

/** What the machine has free now: MemAvailable, capped by the process's cgroup limit. */
export function availableMemory(): number {
  const free = os.freemem();
  const cap = process.constrainedMemory();
  return cap > 0 ? Math.min(free, cap) : free;
}

/**
 * Estimates a job and picks the VAE tile: the whole latent when it is at most MAX_TILE on each
 * side and fits, else the largest tile that fits (with a quarter overlap). `loaded` means the
 * model's sessions are already in memory (their weights are then not needed again).
 */
export function estimateJob(
  p: MemoryProfile,
  job: JobShape,
  opts: { availableBytes: number; loaded?: boolean; tile?: TileSpec | undefined },
): MemoryEstimate {
  const lh = job.height / 8;
  const lw = job.width / 8;
  const batch = job.guidance > 1 ? 2 : 1;
  const weights = opts.loaded ? 0 : p.weightsBytes;
  const unet = unetBytes(p, lh, lw, batch);
  // The decoded image, its blend weights and the 8-bit copies of every image of the batch.
  const outputs = lh * lw * 64 * (4 * 4 + 3 * job.count);
  const base = weights + outputs;
  const plan = (spec: TileSpec | null) => {
    const decode = spec ? decodeBytes(p, Math.min(spec.size, lh), Math.min(spec.size, lw)) : decodeBytes(p, lh, lw);
    const required = base + Math.max(unet, decode);
    return {
      requiredBytes: required,
      availableBytes: opts.availableBytes,
      weightsBytes: weights,
      unetBytes: unet,
      decodeBytes: decode,
      tile: spec && (spec.size < lh || spec.size < lw) ? spec : null,
      tiles: spec ? tileCount(lh, lw, spec) : 1,
      fits: required <= opts.availableBytes,
    };
  };
  if (opts.tile) return plan(opts.tile);
  if (lh <= MAX_TILE && lw <= MAX_TILE) {
    const whole = plan(null);
    if (whole.fits) return whole;
  }
  let last: MemoryEstimate | null = null;
  for (const size of TILE_SIZES) {
    if (size >= Math.max(lh, lw) && size !== TILE_SIZES[0]) continue;
    last = plan({ size, overlap: Math.max(2, size / 4) });
    if (last.fits) return last;
  }
  return last ?? plan(null);
}

/** "1.2 GB" — decimal units, as disk and memory sizes are shown to people. */
export function formatBytes(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(1)} GB`;
  if (n >= 1e6) return `${Math.round(n / 1e6)} MB`;
  return `${Math.max(1, Math.round(n / 1e3))} kB`;
}
