/**
 * Loading and validation of an ONNX Stable Diffusion folder (the Hugging Face Optimum / diffusers
 * layout). Everything that can be checked is checked before a generation is attempted, and every
 * problem is reported as ENGINE_MODEL_INVALID naming the file and what is wrong with it.
 */
import { AppError } from '@atelier/common';
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import ort from 'onnxruntime-node';
import { parseSchedulerConfig, SchedulerConfigError, type SchedulerConfig } from '../schedulers/config.ts';
import { ClipTokenizer } from '../tokenizer/clip-tokenizer.ts';

export const REQUIRED_FILES = [
  'model_index.json',
  'tokenizer/vocab.json',
  'tokenizer/merges.txt',
  'text_encoder/model.onnx',
  'unet/model.onnx',
  'vae_decoder/model.onnx',
  'scheduler/scheduler_config.json',
] as const;

/** SD 1.x/2.x VAE latent scaling factor, used when vae_decoder/config.json does not say. */
export const DEFAULT_SCALING_FACTOR = 0.18215;

export type TensorType = ort.Tensor.Type;

export interface IoInfo {
  name: string;
  type: TensorType;
  /** Numbers are fixed sizes, strings symbolic dimensions; empty when the model does not say. */
  shape: ReadonlyArray<number | string>;
}

export interface ModelFolder {
  dir: string;
  tokenizer: ClipTokenizer;
  scheduler: SchedulerConfig;
  scalingFactor: number;
  latentChannels: number;
  textEncoder: ort.InferenceSession;
  unet: ort.InferenceSession;
  vaeDecoder: ort.InferenceSession;
  /**
   * Channels of the UNet's `sample` input: `latentChannels`, or 2 × latentChannels + 1 for an
   * inpainting UNet (latents, mask, masked-image latents — SD inpainting's 9 channels).
   */
  unetInChannels: number;
  /** vae_encoder/model.onnx when the folder has one (image to image, inpainting); else null. */
  vaeEncoder: VaeEncoder | null;
  io: {
    inputIds: IoInfo;
    hiddenStates: IoInfo;
    sample: IoInfo;
    timestep: IoInfo;
    encoderHiddenStates: IoInfo;
    outSample: IoInfo;
    latentSample: IoInfo;
    image: IoInfo;
  };
}

export interface VaeEncoder {
  session: ort.InferenceSession;
  /** `sample` [batch, 3, h, w], pixels in [-1, 1]. */
  input: IoInfo;
  /**
   * `latent_sample` (diffusers' and this project's exports: latents, or their mean) or
   * `latent_parameters` (Optimum's: mean and log-variance, 2 × latentChannels channels).
   */
  output: IoInfo;
  /** Multiplies the encoder's output (vae_encoder/config.json, else the decoder's). */
  scalingFactor: number;
}

const invalid = (message: string) => new AppError('ENGINE_MODEL_INVALID', message, { details: { reason: message } });

function readJson(dir: string, rel: string): unknown {
  try {
    return JSON.parse(readFileSync(path.join(dir, rel), 'utf8'));
  } catch (e) {
    throw invalid(`${rel}: is not valid JSON (${(e as Error).message})`);
  }
}

function ioOf(list: readonly ort.InferenceSession.ValueMetadata[], name: string): IoInfo | undefined {
  const m = list.find((v) => v.name === name);
  if (!m) return undefined;
  return m.isTensor ? { name, type: m.type, shape: m.shape } : { name, type: 'float32', shape: [] };
}

function requireIo(
  session: ort.InferenceSession,
  file: string,
  kind: 'input' | 'output',
  name: string,
  types: readonly TensorType[],
): IoInfo {
  const list = kind === 'input' ? session.inputMetadata : session.outputMetadata;
  const io = ioOf(list, name);
  if (!io) {
    const have = list.map((v) => `'${v.name}'`).join(', ') || 'none';
    throw invalid(`${file}: has no ${kind} '${name}' (its ${kind}s: ${have})`);
  }
  if (!types.includes(io.type))
    throw invalid(`${file}: ${kind} '${name}' has type ${io.type}, expected ${types.join(' or ')}`);
  return io;
}

const FLOATS = ['float32', 'float16'] as const;
const dim = (io: IoInfo, i: number): number | undefined =>
  typeof io.shape[i] === 'number' ? (io.shape[i] as number) : undefined;

function checkRank(file: string, io: IoInfo, rank: number): void {
  if (io.shape.length !== 0 && io.shape.length !== rank)
    throw invalid(`${file}: '${io.name}' has ${io.shape.length} dimensions, expected ${rank}`);
}

/** Creates one session per component and checks that the components fit together. */
export async function openModelFolder(
  dir: string,
  sessionOptions: ort.InferenceSession.SessionOptions,
): Promise<ModelFolder> {
  if (!existsSync(dir) || !statSync(dir).isDirectory())
    throw new AppError('ENGINE_MODEL_NOT_FOUND', `model folder ${dir} does not exist`, { details: { dir } });
  const missing = REQUIRED_FILES.filter((f) => !existsSync(path.join(dir, f)));
  if (missing.length > 0) throw invalid(`missing ${missing.join(', ')} in ${dir}`);

  readJson(dir, 'model_index.json');
  let scheduler: SchedulerConfig;
  try {
    scheduler = parseSchedulerConfig(readJson(dir, 'scheduler/scheduler_config.json'));
  } catch (e) {
    if (e instanceof SchedulerConfigError) throw invalid(`scheduler/scheduler_config.json: ${e.message}`);
    throw e;
  }
  let scalingFactor = DEFAULT_SCALING_FACTOR;
  if (existsSync(path.join(dir, 'vae_decoder/config.json'))) {
    const vc = readJson(dir, 'vae_decoder/config.json') as { scaling_factor?: unknown };
    if (vc.scaling_factor !== undefined) {
      if (typeof vc.scaling_factor !== 'number' || !(vc.scaling_factor > 0))
        throw invalid('vae_decoder/config.json: scaling_factor must be a positive number');
      scalingFactor = vc.scaling_factor;
    }
  }

  const opened: ort.InferenceSession[] = [];
  const open = async (rel: string) => {
    try {
      const s = await ort.InferenceSession.create(path.join(dir, rel), sessionOptions);
      opened.push(s);
      return s;
    } catch (e) {
      const reason = (e as Error).message.split('\n')[0] ?? '';
      if (/backend not found|ExecutionProvider|Failed to load shared library/i.test(reason)) {
        const wanted = (sessionOptions.executionProviders ?? []).map((p) => (typeof p === 'string' ? p : p.name));
        throw new AppError(
          'ENGINE_PROVIDER_UNAVAILABLE',
          `execution provider ${wanted.join(', ')} cannot run here (${reason})`,
          {
            details: { providers: wanted, reason },
          },
        );
      }
      throw invalid(`${rel}: onnxruntime could not load it (${reason})`);
    }
  };
  try {
    const textEncoder = await open('text_encoder/model.onnx');
    const unet = await open('unet/model.onnx');
    const vaeDecoder = await open('vae_decoder/model.onnx');
    const VE = 'vae_encoder/model.onnx';
    const vaeEncoderSession = existsSync(path.join(dir, VE)) ? await open(VE) : null;

    const TE = 'text_encoder/model.onnx';
    const UN = 'unet/model.onnx';
    const VD = 'vae_decoder/model.onnx';
    const inputIds = requireIo(textEncoder, TE, 'input', 'input_ids', ['int32', 'int64']);
    const hiddenStates = requireIo(textEncoder, TE, 'output', 'last_hidden_state', FLOATS);
    const sample = requireIo(unet, UN, 'input', 'sample', FLOATS);
    const timestep = requireIo(unet, UN, 'input', 'timestep', ['int64', 'int32', 'float32', 'float16']);
    const encoderHiddenStates = requireIo(unet, UN, 'input', 'encoder_hidden_states', FLOATS);
    const outSample = requireIo(unet, UN, 'output', 'out_sample', FLOATS);
    const latentSample = requireIo(vaeDecoder, VD, 'input', 'latent_sample', FLOATS);
    const image = requireIo(vaeDecoder, VD, 'output', 'sample', FLOATS);

    const extra = unet.inputNames.filter((n) => !['sample', 'timestep', 'encoder_hidden_states'].includes(n));
    if (extra.length > 0)
      throw invalid(
        `${UN}: needs inputs this engine does not provide (${extra.map((n) => `'${n}'`).join(', ')}); only SD 1.x/2.x-style UNets are supported`,
      );
    checkRank(TE, inputIds, 2);
    checkRank(TE, hiddenStates, 3);
    checkRank(UN, sample, 4);
    checkRank(UN, encoderHiddenStates, 3);
    checkRank(UN, outSample, 4);
    checkRank(VD, latentSample, 4);
    checkRank(VD, image, 4);

    const teWidth = dim(hiddenStates, 2);
    const unetWidth = dim(encoderHiddenStates, 2);
    if (teWidth !== undefined && unetWidth !== undefined && teWidth !== unetWidth)
      throw invalid(`${UN}: input 'encoder_hidden_states' has width ${unetWidth} but text_encoder outputs ${teWidth}`);
    const inChannels = dim(sample, 1);
    const channels = dim(outSample, 1) ?? dim(latentSample, 1) ?? inChannels ?? 4;
    const unetInChannels = inChannels ?? channels;
    if (unetInChannels !== channels && unetInChannels !== 2 * channels + 1)
      throw invalid(
        `${UN}: input 'sample' has ${unetInChannels} channels but output 'out_sample' has ${channels} (expected ${channels}, or ${2 * channels + 1} for an inpainting UNet)`,
      );
    const vaeChannels = dim(latentSample, 1);
    if (vaeChannels !== undefined && vaeChannels !== channels)
      throw invalid(
        `${VD}: input 'latent_sample' has ${vaeChannels} channels but unet/model.onnx works on ${channels}`,
      );
    const rgb = dim(image, 1);
    if (rgb !== undefined && rgb !== 3) throw invalid(`${VD}: output 'sample' has ${rgb} channels, expected 3 (RGB)`);

    let vaeEncoder: VaeEncoder | null = null;
    if (vaeEncoderSession) {
      const input = requireIo(vaeEncoderSession, VE, 'input', 'sample', FLOATS);
      const outName =
        ['latent_sample', 'latent_parameters', 'latent_dist'].find((n) => vaeEncoderSession.outputNames.includes(n)) ??
        (vaeEncoderSession.outputNames.length === 1 ? vaeEncoderSession.outputNames[0]! : 'latent_sample');
      const output = requireIo(vaeEncoderSession, VE, 'output', outName, FLOATS);
      checkRank(VE, input, 4);
      checkRank(VE, output, 4);
      const encIn = dim(input, 1);
      if (encIn !== undefined && encIn !== 3)
        throw invalid(`${VE}: input 'sample' has ${encIn} channels, expected 3 (RGB)`);
      const encOut = dim(output, 1);
      if (encOut !== undefined && encOut !== channels && encOut !== 2 * channels)
        throw invalid(`${VE}: output '${outName}' has ${encOut} channels but unet/model.onnx works on ${channels}`);
      let encScaling = scalingFactor;
      if (existsSync(path.join(dir, 'vae_encoder/config.json'))) {
        const ec = readJson(dir, 'vae_encoder/config.json') as { scaling_factor?: unknown };
        if (ec.scaling_factor !== undefined) {
          if (typeof ec.scaling_factor !== 'number' || !(ec.scaling_factor > 0))
            throw invalid('vae_encoder/config.json: scaling_factor must be a positive number');
          encScaling = ec.scaling_factor;
        }
      }
      vaeEncoder = { session: vaeEncoderSession, input, output, scalingFactor: encScaling };
    }

    const seqLen = dim(inputIds, 1) ?? 77;
    let tokenizer: ClipTokenizer;
    try {
      tokenizer = ClipTokenizer.fromDir(path.join(dir, 'tokenizer'), seqLen);
    } catch (e) {
      throw invalid(`tokenizer: could not be read (${(e as Error).message})`);
    }
    if (tokenizer.maxLength !== seqLen)
      throw invalid(
        `tokenizer/tokenizer_config.json: model_max_length ${tokenizer.maxLength} but ${TE} takes ${seqLen} tokens`,
      );

    return {
      dir,
      tokenizer,
      scheduler,
      scalingFactor,
      latentChannels: channels,
      textEncoder,
      unet,
      vaeDecoder,
      unetInChannels,
      vaeEncoder,
      io: { inputIds, hiddenStates, sample, timestep, encoderHiddenStates, outSample, latentSample, image },
    };
  } catch (e) {
    await Promise.allSettled(opened.map((s) => s.release()));
    throw e;
  }
}
