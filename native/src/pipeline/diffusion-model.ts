/**
 * The Stable Diffusion text-to-image pipeline on onnxruntime-node: CLIP tokens → text encoder →
 * scheduler loop over the UNet with classifier-free guidance → VAE decode → PNG with metadata.
 */
import {
  AppError,
  batchSeed,
  DEFAULT_STRENGTH,
  denoisingSteps,
  generationModeOf,
  type ImageMetadata,
  METADATA_PNG_KEY,
  type ResolvedGenerateRequest,
} from '@atelier/common';
import { createHash } from 'node:crypto';
import path from 'node:path';
import type ort from 'onnxruntime-node';
import { hashModelDir } from '../model/hash.ts';
import { type ModelFolder, openModelFolder } from '../model/model-folder.ts';
import { downscale, encodePng, type RawImage } from '../png/png.ts';
import { Mt19937 } from '../schedulers/random.ts';
import { createScheduler } from '../schedulers/schedulers.ts';
import {
  availableMemory,
  estimateJob,
  formatBytes,
  memoryProfile,
  type MemoryEstimate,
  type MemoryProfile,
} from './memory.ts';
import {
  binaryMask,
  decodeInputImage,
  featherMask,
  featherRadius,
  latentMask,
  nearestLatentMask,
  pasteOutsideMask,
  resize,
  toPlanarSigned,
  toRgb as dropAlpha,
} from './input-image.ts';
import { metadataText } from './metadata.ts';
import { latentPreview } from './preview.ts';
import { floatInput, floatTensor, intTensor, toFloat32 } from './tensors.ts';
import { decodeTiled, type TileSpec } from './vae-tiling.ts';
import { ENGINE_VERSION } from './version.ts';

export interface LoadOptions {
  modelDir: string;
  /** onnxruntime execution providers in order of preference; default ['cpu']. */
  providers?: string[];
  sessionOptions?: ort.InferenceSession.SessionOptions;
  /** The model's id; default the folder's name. */
  id?: string;
  /** A known sha256 of the folder (e.g. from the model store), to skip hashing large models. */
  hash?: string;
}

export interface ProgressEvent {
  imageIndex: number;
  /** 1-based: the step just finished. */
  step: number;
  total: number;
  /** Since `generate` was called. Unit: milliseconds. */
  elapsedMs: number;
  preview?: { width: number; height: number; png: Uint8Array };
  /** Present while a large image is decoded in tiles: 1-based tile just decoded, of `tiles`. */
  decode?: { tile: number; tiles: number };
}

export interface GeneratedImage {
  index: number;
  seed: number;
  width: number;
  height: number;
  png: Uint8Array;
  thumbnail: { mime: 'image/png' | 'image/webp'; bytes: Uint8Array; width: number; height: number };
  metadata: ImageMetadata;
  /** sha256 of `png`, hex. */
  sha256: string;
}

export interface GenerationResult {
  images: GeneratedImage[];
  timings: {
    /** Wall time of the whole call. Unit: milliseconds. */
    totalMs: number;
    /** Σ of onnxruntime `session.run` durations (text encoder, UNet, VAE). Unit: milliseconds. */
    sessionRunMs: number;
    /** UNet evaluations per image. */
    steps: number;
    /** Batch size the UNet ran with: 2 with classifier-free guidance, 1 without. */
    unetBatch: number;
    /** Of totalMs, the time spent turning decoded pixels into PNGs, thumbnails and hashes. Unit: ms. */
    encodeMs: number;
    /** VAE decoder runs per image: 1 when decoded whole, else the number of tiles. */
    vaeTiles: number;
    /** Of sessionRunMs, the UNet's share (all images). Unit: milliseconds. */
    unetMs: number;
  };
  /** The memory estimate the job was checked against before it started. */
  memory: MemoryEstimate;
}

/**
 * The bytes of the images a request names in `initImage` and `mask` (PNG or JPEG, any size: they
 * are resampled to the request's width × height). The request carries only their names.
 */
export interface GenerateInputs {
  initImage?: Uint8Array | undefined;
  mask?: Uint8Array | undefined;
}

export interface GenerateOptions {
  signal?: AbortSignal;
  /** Required when the request has `initImage` (and `mask`). */
  inputs?: GenerateInputs | undefined;
  onProgress?: (e: ProgressEvent) => void;
  /** Attach a low-resolution latent preview to each progress event. */
  preview?: boolean;
  /** Recorded as `app_version` in the metadata; default the engine version. */
  appVersion?: string;
  /**
   * Memory the job may use (Unit: bytes); default what the machine has free now. A job whose
   * estimate exceeds it is refused with ENGINE_MEMORY_INSUFFICIENT before any work starts.
   */
  memoryLimitBytes?: number;
  /** Forces this VAE tile (latent pixels); default chosen from the memory estimate. */
  vaeTile?: TileSpec;
}

export interface DiffusionModel {
  readonly id: string;
  readonly dir: string;
  /** sha256 over the model files, hex. */
  readonly hash: string;
  readonly provider: string;
  /** What the model's memory estimates are computed from. */
  readonly memory: MemoryProfile;
  generate(req: ResolvedGenerateRequest, opts?: GenerateOptions): Promise<GenerationResult>;
  /** Releases the sessions once; later calls do nothing. Waits for a running generation to end. */
  dispose(): Promise<void>;
}

/** Longest side of the thumbnail. Unit: pixels. */
export const THUMBNAIL_SIZE = 256;

export async function loadModel(opts: LoadOptions): Promise<DiffusionModel> {
  const providers = opts.providers && opts.providers.length > 0 ? opts.providers : ['cpu'];
  const dir = path.resolve(opts.modelDir);
  const folder = await openModelFolder(dir, { ...opts.sessionOptions, executionProviders: providers });
  try {
    const hash = opts.hash ?? (await hashModelDir(dir));
    return new OnnxDiffusionModel(folder, opts.id ?? path.basename(dir), hash, providers[0]!);
  } catch (e) {
    await releaseAll(folder);
    throw e;
  }
}

const canceled = () => new AppError('CANCELED', 'generation canceled');

async function releaseAll(m: ModelFolder): Promise<void> {
  await Promise.allSettled([
    m.textEncoder.release(),
    m.unet.release(),
    m.vaeDecoder.release(),
    ...(m.vaeEncoder ? [m.vaeEncoder.session.release()] : []),
  ]);
}

/** What a request's starting image and mask become before sampling. */
interface PreparedInputs {
  /** The starting image at the request's size, RGB. */
  init: RawImage | null;
  /** Its scaled latents [c, h/8, w/8]. */
  initLatents: Float32Array | null;
  /** Standard UNet inpainting: 1 where the sampler's result is kept, 0 where the start image is blended back. */
  latentBlend: Float32Array | null;
  /** Inpainting UNet: its extra input channels, the mask plane then the masked image's latents. */
  unetExtra: Float32Array | null;
  /** Inpainting: the final paste's per-pixel weight. */
  feather: Float64Array | null;
}

class OnnxDiffusionModel implements DiffusionModel {
  readonly id: string;
  readonly dir: string;
  readonly hash: string;
  readonly provider: string;
  readonly memory: MemoryProfile;
  private readonly m: ModelFolder;
  /** Generations run one at a time per model; this is the tail of the queue. */
  private queue: Promise<unknown> = Promise.resolve();
  private disposed: Promise<void> | null = null;

  constructor(folder: ModelFolder, id: string, hash: string, provider: string) {
    this.m = folder;
    this.dir = folder.dir;
    this.id = id;
    this.hash = hash;
    this.provider = provider;
    this.memory = memoryProfile(folder.dir, folder.io.sample.type === 'float16' ? 2 : 4);
  }

  generate(req: ResolvedGenerateRequest, opts: GenerateOptions = {}): Promise<GenerationResult> {
    if (this.disposed) return Promise.reject(new AppError('ENGINE_FAILED', `model ${this.id} has been disposed`));
    const run = this.queue.then(() => this.run(req, opts));
    this.queue = run.catch(() => undefined);
    return run;
  }

  dispose(): Promise<void> {
    this.disposed ??= this.queue.then(async () => {
      await releaseAll(this.m);
    });
    return this.disposed;
  }

  private prepareInputs(
    req: ResolvedGenerateRequest,
    inputs: GenerateInputs | undefined,
    inpaintUnet: boolean,
    timed: Timed,
  ): Promise<PreparedInputs> {
    return prepareInputsFor(this.m, req, inputs, inpaintUnet, timed);
  }

  private async run(req: ResolvedGenerateRequest, opts: GenerateOptions): Promise<GenerationResult> {
    const started = performance.now();
    const { signal } = opts;
    if (signal?.aborted) throw canceled();
    const m = this.m;
    let sessionRunMs = 0;
    let encodeMs = 0;
    let unetMs = 0;
    const timed = async (s: ort.InferenceSession, feeds: ort.InferenceSession.FeedsType, label: string) => {
      const t0 = performance.now();
      try {
        return await s.run(feeds);
      } catch (e) {
        const msg = (e as Error).message ?? String(e);
        if (/out of memory|alloc|bad_alloc/i.test(msg))
          throw new AppError('ENGINE_OUT_OF_MEMORY', `${label}: ${msg}`, { cause: e });
        throw new AppError('ENGINE_FAILED', `${label}: ${msg}`, { cause: e });
      } finally {
        sessionRunMs += performance.now() - t0;
      }
    };

    if (req.width % 8 !== 0 || req.height % 8 !== 0)
      throw new AppError('VALIDATION_FAILED', 'width and height must be multiples of 8');
    const memory = estimateJob(this.memory, req, {
      availableBytes: opts.memoryLimitBytes ?? availableMemory(),
      loaded: true,
      tile: opts.vaeTile,
    });
    if (!memory.fits) throw memoryError(memory, req);
    const scheduler = createScheduler(req.scheduler, m.scheduler, req.steps);
    const cfg = req.guidance > 1;
    const batch = cfg ? 2 : 1;

    // Text embeddings: [negative, positive] with guidance (diffusers' order), else [positive].
    const seq = m.tokenizer.maxLength;
    const ids = new Int32Array(batch * seq);
    if (cfg) ids.set(m.tokenizer.encode(req.negativePrompt), 0);
    ids.set(m.tokenizer.encode(req.prompt), (batch - 1) * seq);
    const te = await timed(
      m.textEncoder,
      { [m.io.inputIds.name]: intTensor(m.io.inputIds.type, ids, [batch, seq]) },
      'text_encoder',
    );
    const hidden = te[m.io.hiddenStates.name]!;
    const context = floatTensor(m.io.encoderHiddenStates.type, toFloat32(hidden), [...hidden.dims]);

    const c = m.latentChannels;
    const lh = req.height / 8;
    const lw = req.width / 8;
    const size = c * lh * lw;
    const mode = generationModeOf(req);
    const inpaintUnet = m.unetInChannels !== c;
    const prepared = await this.prepareInputs(req, opts.inputs, inpaintUnet, timed);
    if (signal?.aborted) throw canceled();
    const totalSteps = scheduler.timesteps.length;
    const tStart = totalSteps - denoisingSteps(req);
    const tsShape = m.io.timestep.shape;
    const tsLen =
      typeof tsShape[0] === 'number'
        ? tsShape[0]
        : tsShape.length > 0 && tsShape[0] === m.io.sample.shape[0]
          ? batch
          : 1;
    const tsDims = tsShape.length === 0 ? [] : [tsLen];

    // Every per-step buffer and input tensor is allocated once here and rewritten in place, so the
    // loop makes no garbage whose collection would land inside the timed session.run calls.
    const perSample = m.unetInChannels * lh * lw;
    const unetSample = floatInput(m.io.sample.type, [batch, m.unetInChannels, lh, lw]);
    const modelInput = unetSample.data.subarray(0, size);
    if (prepared.unetExtra) unetSample.data.set(prepared.unetExtra, size);
    const latents = new Float32Array(size);
    const noise = prepared.initLatents ? new Float32Array(size) : null;
    const known = prepared.latentBlend ? new Float32Array(size) : null;
    const guided = cfg ? new Float32Array(size) : null;
    const predBuf = m.io.outSample.type === 'float16' ? new Float32Array(batch * size) : undefined;
    const vaeInput = floatInput(m.io.latentSample.type, [1, c, lh, lw]);
    const timestepTensors = scheduler.timesteps.map((t) =>
      intTensor(m.io.timestep.type, new Array<number>(tsLen).fill(t), tsDims),
    );
    const unetFeeds: Record<string, ort.Tensor> = {
      [m.io.sample.name]: unetSample.tensor,
      [m.io.timestep.name]: timestepTensors[0]!,
      [m.io.encoderHiddenStates.name]: context,
    };
    const vaeFeeds: ort.InferenceSession.FeedsType = { [m.io.latentSample.name]: vaeInput.tensor };
    const guidance = req.guidance;

    const images: GeneratedImage[] = [];
    for (let index = 0; index < req.count; index++) {
      const seed = batchSeed(req.seed, index);
      const rng = new Mt19937(seed);
      if (noise && prepared.initLatents) {
        // Image to image: the start image's latents noised to the first step that runs (diffusers'
        // prepare_latents), the noise drawn first from the image's seed as for text to image.
        for (let j = 0; j < size; j++) noise[j] = rng.nextGaussian();
        if (tStart < totalSteps) scheduler.addNoise(prepared.initLatents, noise, tStart, latents);
        else latents.set(prepared.initLatents);
      } else {
        const sigma0 = scheduler.initNoiseSigma;
        for (let j = 0; j < size; j++) latents[j] = rng.nextGaussian() * sigma0;
      }
      for (let i = tStart; i < totalSteps; i++) {
        if (signal?.aborted) throw canceled();
        scheduler.scaleModelInput(latents, i, modelInput);
        if (cfg) unetSample.data.copyWithin(perSample, 0, perSample);
        unetSample.sync();
        unetFeeds[m.io.timestep.name] = timestepTensors[i]!;
        const unetStart = performance.now();
        const out = await timed(m.unet, unetFeeds, 'unet');
        unetMs += performance.now() - unetStart;
        const pred = toFloat32(out[m.io.outSample.name]!, predBuf);
        let modelOutput = pred;
        if (guided) {
          for (let j = 0; j < size; j++) {
            const u = pred[j]!;
            guided[j] = u + guidance * (pred[size + j]! - u);
          }
          modelOutput = guided;
        }
        scheduler.step(modelOutput, i, latents, rng, latents);
        if (prepared.latentBlend && known && noise && prepared.initLatents) {
          // Inpainting with a standard UNet: outside the mask, the start image noised to where the
          // sampler now is (or clean after the last step) replaces what the sampler drew.
          const clean = i === totalSteps - 1;
          const k = clean ? prepared.initLatents : scheduler.addNoise(prepared.initLatents, noise, i + 1, known);
          const blend = prepared.latentBlend;
          const plane = lh * lw;
          for (let j = 0; j < size; j++) if (blend[j % plane] === 0) latents[j] = k[j]!;
        }
        if (opts.onProgress) {
          const event: ProgressEvent = {
            imageIndex: index,
            step: i - tStart + 1,
            total: totalSteps - tStart,
            elapsedMs: performance.now() - started,
          };
          if (opts.preview) {
            const sigma = scheduler.sigmas[i + 1] ?? 0;
            event.preview = latentPreview(latents, c, lh, lw, 1 / Math.sqrt(sigma * sigma + 1));
          }
          opts.onProgress(event);
        }
      }
      if (signal?.aborted) throw canceled();

      const scalingFactor = m.scalingFactor;
      let rgb: RawImage;
      let encodeStart: number;
      if (!memory.tile) {
        for (let j = 0; j < size; j++) vaeInput.data[j] = latents[j]! / scalingFactor;
        vaeInput.sync();
        const decoded = await timed(m.vaeDecoder, vaeFeeds, 'vae_decoder');
        if (signal?.aborted) throw canceled();
        const imageTensor = decoded[m.io.image.name]!;
        const [, , h, w] = imageTensor.dims as [number, number, number, number];
        encodeStart = performance.now();
        rgb = toRgb(toFloat32(imageTensor), w, h);
      } else {
        const scaled = new Float32Array(size);
        for (let j = 0; j < size; j++) scaled[j] = latents[j]! / scalingFactor;
        const tiles = memory.tiles;
        const out = await decodeTiled(
          scaled,
          c,
          lh,
          lw,
          memory.tile,
          async (tile, th, tw) => {
            const input = floatInput(m.io.latentSample.type, [1, c, th, tw]);
            input.data.set(tile);
            input.sync();
            const decoded = await timed(m.vaeDecoder, { [m.io.latentSample.name]: input.tensor }, 'vae_decoder');
            const t = decoded[m.io.image.name]!;
            const [, ch, h, w] = t.dims as [number, number, number, number];
            return { data: toFloat32(t), channels: ch, height: h, width: w };
          },
          {
            beforeTile: () => {
              if (signal?.aborted) throw canceled();
            },
            afterTile: (i) =>
              opts.onProgress?.({
                imageIndex: index,
                step: totalSteps - tStart,
                total: totalSteps - tStart,
                elapsedMs: performance.now() - started,
                decode: { tile: i + 1, tiles },
              }),
          },
        );
        if (signal?.aborted) throw canceled();
        encodeStart = performance.now();
        rgb = toRgb(out.data, out.width, out.height);
      }
      if (prepared.feather && prepared.init) rgb = pasteOutsideMask(rgb, prepared.init, prepared.feather);
      const w = rgb.width;
      const h = rgb.height;

      const metadata: ImageMetadata = {
        positive_prompt: req.prompt,
        negative_prompt: req.negativePrompt,
        seed,
        steps: req.steps,
        cfg_scale: req.guidance,
        scheduler: req.scheduler,
        width: w,
        height: h,
        model: { name: req.model, hash: this.hash },
        generation_mode: mode,
        app_version: opts.appVersion ?? ENGINE_VERSION,
        ...(req.initImage !== undefined
          ? { strength: req.strength ?? DEFAULT_STRENGTH, init_image: req.initImage }
          : {}),
        ...(req.mask !== undefined ? { init_mask: req.mask } : {}),
        engine_version: ENGINE_VERSION,
        execution_provider: this.provider,
      };
      const png = encodePng(rgb, { [METADATA_PNG_KEY]: metadataText(metadata) });
      const thumb = downscale(rgb, THUMBNAIL_SIZE);
      images.push({
        index,
        seed,
        width: w,
        height: h,
        png,
        thumbnail: {
          mime: 'image/png',
          bytes: thumb === rgb ? png : encodePng(thumb),
          width: thumb.width,
          height: thumb.height,
        },
        metadata,
        sha256: createHash('sha256').update(png).digest('hex'),
      });
      encodeMs += performance.now() - encodeStart;
    }
    return {
      images,
      timings: {
        totalMs: performance.now() - started,
        sessionRunMs,
        steps: totalSteps - tStart,
        unetBatch: batch,
        encodeMs,
        vaeTiles: memory.tiles,
        unetMs,
      },
      memory,
    };
  }
}

type Timed = (
  s: ort.InferenceSession,
  feeds: ort.InferenceSession.FeedsType,
  label: string,
) => Promise<ort.InferenceSession.OnnxValueMapType>;

/** The engine's side of PreparedInputs; a method of the model in spirit, kept apart for length. */
async function prepareInputsFor(
  m: ModelFolder,
  req: ResolvedGenerateRequest,
  inputs: GenerateInputs | undefined,
  inpaintUnet: boolean,
  timed: Timed,
): Promise<PreparedInputs> {
  const none: PreparedInputs = { init: null, initLatents: null, latentBlend: null, unetExtra: null, feather: null };
  const { width, height } = req;
  const c = m.latentChannels;
  const plane = (width / 8) * (height / 8);
  const encode = async (pixels: Float32Array): Promise<Float32Array> => {
    const enc = m.vaeEncoder!;
    const outputs = await timed(
      enc.session,
      { [enc.input.name]: floatTensor(enc.input.type, pixels, [1, 3, height, width]) },
      'vae_encoder',
    );
    const t = outputs[enc.output.name]!;
    const [, oc, oh, ow] = t.dims as [number, number, number, number];
    if (oh * ow !== plane || (oc !== c && oc !== 2 * c))
      throw new AppError(
        'ENGINE_MODEL_INVALID',
        `vae_encoder/model.onnx: output '${enc.output.name}' is [${t.dims.join(', ')}] for a ${width}×${height} image; expected [1, ${c} or ${2 * c}, ${height / 8}, ${width / 8}]`,
      );
    // Mean and log-variance (Optimum's latent_parameters): the mean, so the same image always
    // encodes the same way; a sampled latent would differ from the mean by the VAE's tiny σ.
    const data = toFloat32(t).subarray(0, c * plane);
    const out = new Float32Array(c * plane);
    for (let j = 0; j < out.length; j++) out[j] = data[j]! * enc.scalingFactor;
    return out;
  };

  if (req.initImage === undefined) {
    if (!inpaintUnet) return none;
    // Text to image on an inpainting UNet: everything masked over a blank (grey) image, as
    // diffusers' inpainting pipeline does at strength 1 with a full mask.
    const extra = new Float32Array((c + 1) * plane);
    extra.fill(1, 0, plane);
    if (m.vaeEncoder) extra.set(await encode(new Float32Array(3 * width * height)), plane);
    return { ...none, unetExtra: extra };
  }
  if (!m.vaeEncoder)
    throw new AppError(
      'ENGINE_IMAGE_INPUT_UNSUPPORTED',
      `model ${req.model} has no vae_encoder/model.onnx, so it cannot start from an image`,
    );
  if (!inputs?.initImage)
    throw new AppError(
      'VALIDATION_FAILED',
      `the request names a starting image (${req.initImage}) but its bytes were not given`,
      {
        userMessage: 'The starting image was not received. Pick it again.',
      },
    );
  if (req.mask !== undefined && !inputs.mask)
    throw new AppError('VALIDATION_FAILED', `the request names a mask (${req.mask}) but its bytes were not given`, {
      userMessage: 'The mask was not received. Paint or pick it again.',
    });
  const original = decodeInputImage(inputs.initImage, 'initImage', req.initImage);
  let maskImage: RawImage | null = null;
  if (req.mask !== undefined) {
    maskImage = decodeInputImage(inputs.mask!, 'mask', req.mask);
    if (maskImage.width !== original.width || maskImage.height !== original.height)
      throw new AppError(
        'INPUT_IMAGE_SIZE_MISMATCH',
        `the mask is ${maskImage.width}×${maskImage.height} but the starting image is ${original.width}×${original.height}`,
        {
          userMessage: `The mask is ${maskImage.width}×${maskImage.height} pixels but the starting image is ${original.width}×${original.height}. Paint or save the mask at the image's size.`,
          details: {
            mask: { width: maskImage.width, height: maskImage.height },
            initImage: { width: original.width, height: original.height },
          },
        },
      );
  }
  // Another size than the request's is resampled to it (the request's size is what is made).
  const init = dropAlpha(resize(original, width, height));
  const initLatents = await encode(toPlanarSigned(init));
  if (!maskImage) {
    if (!inpaintUnet) return { ...none, init, initLatents };
    const extra = new Float32Array((c + 1) * plane);
    extra.fill(1, 0, plane);
    extra.set(await encode(new Float32Array(3 * width * height)), plane);
    return { ...none, init, initLatents, unetExtra: extra };
  }
  const pixelMask = binaryMask(resize(maskImage, width, height));
  const feather = featherMask(pixelMask, width, height, featherRadius(width, height));
  if (inpaintUnet) {
    const extra = new Float32Array((c + 1) * plane);
    extra.set(nearestLatentMask(pixelMask, width, height), 0);
    extra.set(await encode(toPlanarSigned(init, pixelMask)), plane);
    return { ...none, init, initLatents, unetExtra: extra, feather };
  }
  return { ...none, init, initLatents, latentBlend: latentMask(pixelMask, width, height), feather };
}

function memoryError(e: MemoryEstimate, req: ResolvedGenerateRequest): AppError {
  const need = formatBytes(e.requiredBytes);
  const have = formatBytes(e.availableBytes);
  return new AppError(
    'ENGINE_MEMORY_INSUFFICIENT',
    `${req.width}×${req.height} needs about ${need} of memory; ${have} is free`,
    {
      userMessage: `A ${req.width}×${req.height} image needs about ${need} of memory and this computer has ${have} free. Use a smaller size, close other apps, or run it in the cloud.`,
      details: { requiredBytes: e.requiredBytes, availableBytes: e.availableBytes },
    },
  );
}

/** VAE output in [-1, 1], planar [3, h, w] → interleaved 8-bit RGB. NaN becomes 0. */
function toRgb(planes: Float32Array, width: number, height: number): RawImage {
  const n = width * height;
  const data = new Uint8Array(n * 3);
  for (let ch = 0; ch < 3; ch++) {
    const base = ch * n;
    for (let p = 0, o = ch; p < n; p++, o += 3) {
      const v = planes[base + p]! / 2 + 0.5;
      // Same as Math.round(clamp(v, 0, 1) * 255), with NaN (which fails v > 0) mapped to 0.
      data[o] = v > 0 ? (v < 1 ? Math.round(v * 255) : 255) : 0;
    }
  }
  return { width, height, channels: 3, data };
}
