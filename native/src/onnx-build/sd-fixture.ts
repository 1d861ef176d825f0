/**
 * Tiny Stable-Diffusion-shaped models with deterministic random weights, written in the folder
 * layout Hugging Face Optimum exports (see native/README.md). They exercise every code path of
 * the pipeline — CLIP tokens through a causal transformer, a UNet with down/mid/up blocks,
 * ResNets, cross-attention and skip connections, a VAE decoder with ×8 upsampling — while
 * generating a 64×64 image in a fraction of a second on a CPU.
 */
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ai, aints, ElemType, GraphBuilder } from './graph.ts';
import { Layers } from './layers.ts';

export interface FixtureSpec {
  id: string;
  seed: number;
  /** Text embedding width (CLIP ViT-L/14 is 768). */
  hidden: number;
  /** The UNet's `timestep` input type: SD 1.5 exports use int64, others float. */
  timestepType: 'int64' | 'float';
  /** Written to tokenizer_config.json: SD 1.x pads with <|endoftext|>, SD 2.x / Turbo with "!". */
  padToken: string;
  scheduler: Record<string, unknown>;
  /**
   * UNet channel multiplier (default 1: 16/32 channels). Only the engine bench sets it, to get a
   * UNet whose step costs tens of milliseconds on a CPU, closer to a real one than the tiny default.
   */
  unetScale?: number;
}

const SEQ = 77;
const VOCAB = 49408;
const OPSET = 17;

const SD15_SCHEDULER = {
  _class_name: 'PNDMScheduler',
  _diffusers_version: '0.6.0',
  beta_end: 0.012,
  beta_schedule: 'scaled_linear',
  beta_start: 0.00085,
  clip_sample: false,
  num_train_timesteps: 1000,
  prediction_type: 'epsilon',
  set_alpha_to_one: false,
  skip_prk_steps: true,
  steps_offset: 1,
  timestep_spacing: 'leading',
  trained_betas: null,
};

export const FIXTURES: FixtureSpec[] = [
  {
    id: 'atelier-fixture-sd',
    seed: 1501,
    hidden: 32,
    timestepType: 'int64',
    padToken: '<|endoftext|>',
    scheduler: SD15_SCHEDULER,
  },
  {
    id: 'atelier-fixture-turbo',
    seed: 2101,
    hidden: 32,
    timestepType: 'float',
    padToken: '!',
    scheduler: {
      ...SD15_SCHEDULER,
      _class_name: 'EulerAncestralDiscreteScheduler',
      prediction_type: 'v_prediction',
      set_alpha_to_one: true,
      steps_offset: 0,
      timestep_spacing: 'trailing',
      original_inference_steps: 50,
      timestep_scaling: 10,
    },
  },
];

/** The sources whose content decides the fixtures' bytes: a change to any rebuilds them. */
const BUILDER_SOURCES = ['graph.ts', 'layers.ts', 'sd-fixture.ts', '../schedulers/random.ts'];

export function buildTextEncoder(seed: number, hidden: number, layers = 2, heads = 2): Uint8Array {
  const g = new GraphBuilder('text_encoder', seed);
  const nn = new Layers(g);
  const ids = g.input('input_ids', ElemType.INT32, ['batch', SEQ]);
  let x = g.op('Gather', [g.randn('token_embedding', [VOCAB, hidden], 1), ids], { axis: ai(0) });
  x = g.op('Add', [x, g.randn('position_embedding', [SEQ, hidden], 0.5)]);
  const mask = new Float32Array(SEQ * SEQ);
  for (let i = 0; i < SEQ; i++) for (let j = i + 1; j < SEQ; j++) mask[i * SEQ + j] = -1e4;
  const causal = g.floats('causal_mask', [SEQ, SEQ], mask);
  const headDim = hidden / heads;
  for (let l = 0; l < layers; l++) {
    const h = nn.layerNorm(x, hidden);
    const split = (t: string, perm: number[]) =>
      g.op('Transpose', [g.op('Reshape', [t, g.int64s('heads', [0, 0, heads, headDim])])], { perm: aints(perm) });
    const q = split(nn.linear(h, hidden, hidden), [0, 2, 1, 3]);
    const k = split(nn.linear(h, hidden, hidden), [0, 2, 3, 1]);
    const v = split(nn.linear(h, hidden, hidden), [0, 2, 1, 3]);
    const scores = g.op('Add', [
      g.op('Mul', [g.op('MatMul', [q, k]), g.scalar('scale', 1 / Math.sqrt(headDim))]),
      causal,
    ]);
    const att = g.op('MatMul', [g.op('Softmax', [scores], { axis: ai(-1) }), v]);
    const merged = g.op('Reshape', [
      g.op('Transpose', [att], { perm: aints([0, 2, 1, 3]) }),
      g.int64s('merge', [0, 0, hidden]),
    ]);
    x = g.op('Add', [x, nn.linear(merged, hidden, hidden)]);
    const m = nn.linear(nn.quickGelu(nn.linear(nn.layerNorm(x, hidden), hidden, hidden * 4)), hidden * 4, hidden);
    x = g.op('Add', [x, m]);
  }
  g.op('Identity', [nn.layerNorm(x, hidden)], {}, 'last_hidden_state');
  g.output('last_hidden_state', ElemType.FLOAT, ['batch', SEQ, hidden]);
  return g.build(OPSET).model;
}

/**
 * `fp16Io` declares sample, encoder_hidden_states and out_sample as float16 (computing in float32
 * inside), the interface of an fp16 export, so the pipeline's dtype conversions run for real.
 */
export function buildUnet(
  seed: number,
  hidden: number,
  timestepType: 'int64' | 'float',
  fp16Io = false,
  scale = 1,
  inChannels = 4,
) {
  if (!Number.isInteger(scale) || scale < 1) throw new Error(`UNet scale must be a whole number ≥ 1, got ${scale}`);
  const g = new GraphBuilder('unet', seed);
  const nn = new Layers(g);
  const [c0, c1, groups, tdim] = [16 * scale, 32 * scale, 4, 64];
  const io = fp16Io ? ElemType.FLOAT16 : ElemType.FLOAT;
  const toFloat = (x: string) => (fp16Io ? g.op('Cast', [x], { to: ai(ElemType.FLOAT) }) : x);
  // inChannels 9 is SD's inpainting UNet: latents, mask and masked-image latents concatenated.
  const sample = toFloat(g.input('sample', io, ['batch', inChannels, 'height', 'width']));
  const timestep = g.input('timestep', timestepType === 'int64' ? ElemType.INT64 : ElemType.FLOAT, ['steps']);
  const context = toFloat(g.input('encoder_hidden_states', io, ['batch', 'sequence', hidden]));
  const ctx = { name: context, dim: hidden };

  // Sinusoidal timestep embedding → MLP, as diffusers' Timesteps + TimestepEmbedding.
  const half = 8;
  const freqs = Float32Array.from({ length: half }, (_, i) => Math.exp((-Math.log(10000) * i) / half));
  const t = g.op('Unsqueeze', [g.op('Cast', [timestep], { to: ai(ElemType.FLOAT) }), g.int64s('t_axis', [1])]);
  const phase = g.op('Mul', [t, g.floats('freqs', [1, half], freqs)]);
  const sinus = g.op('Concat', [g.op('Sin', [phase]), g.op('Cos', [phase])], { axis: ai(1) });
  const temb = nn.linear(nn.silu(nn.linear(sinus, 2 * half, tdim)), tdim, tdim);
  const tAct = { name: nn.silu(temb), dim: tdim };

  const h0 = nn.conv(sample, inChannels, c0, 3);
  const s1 = nn.spatialAttention(nn.resnet(h0, c0, c0, groups, tAct), c0, groups, ctx);
  const down = nn.conv(s1, c0, c0, 3, 2);
  const s2 = nn.spatialAttention(nn.resnet(down, c0, c1, groups, tAct), c1, groups, ctx);

  let mid = nn.resnet(s2, c1, c1, groups, tAct);
  mid = nn.spatialAttention(mid, c1, groups, ctx);
  mid = nn.resnet(mid, c1, c1, groups, tAct);

  let up = g.op('Concat', [mid, s2], { axis: ai(1) });
  up = nn.spatialAttention(nn.resnet(up, 2 * c1, c1, groups, tAct), c1, groups, ctx);
  up = nn.upsampleLike(up, s1, c1);
  up = g.op('Concat', [up, s1], { axis: ai(1) });
  up = nn.spatialAttention(nn.resnet(up, c1 + c0, c0, groups, tAct), c0, groups, ctx);

  const eps = nn.conv(nn.silu(nn.groupNorm(up, c0, groups)), c0, 4, 3, 1, 0.5);
  // A share of the input passes straight through so the fixture's "noise estimate" tracks the
  // noise in the sample, like a trained model's does, and sampling stays bounded.
  const latents =
    inChannels === 4
      ? sample
      : g.op('Slice', [
          sample,
          g.int64s('latent_start', [0]),
          g.int64s('latent_end', [4]),
          g.int64s('latent_axis', [1]),
        ]);
  const out = g.op('Add', [eps, g.op('Mul', [latents, g.scalar('passthrough', 0.5)])]);
  g.op('Cast', [out], { to: ai(io) }, 'out_sample');
  g.output('out_sample', io, ['batch', 4, 'height', 'width']);
  return g.build(OPSET, 'model.onnx_data');
}

export function buildVaeDecoder(seed: number, latentChannels = 4): Uint8Array {
  const g = new GraphBuilder('vae_decoder', seed);
  const nn = new Layers(g);
  const groups = 4;
  const z = g.input('latent_sample', ElemType.FLOAT, ['batch', latentChannels, 'latent_height', 'latent_width']);
  let h = nn.conv(z, latentChannels, 32, 3, 1, 0.3);
  h = nn.resnet(h, 32, 32, groups);
  h = nn.spatialAttention(h, 32, groups);
  h = nn.upsample2x(h, 32);
  h = nn.resnet(h, 32, 16, groups);
  h = nn.upsample2x(h, 16);
  h = nn.upsample2x(h, 16);
  h = nn.resnet(h, 16, 16, groups);
  g.op('Identity', [nn.conv(nn.silu(nn.groupNorm(h, 16, groups)), 16, 3, 3, 1, 0.6)], {}, 'sample');
  g.output('sample', ElemType.FLOAT, ['batch', 3, 'height', 'width']);
  return g.build(OPSET).model;
}

/**
 * A VAE encoder the decoder's mirror image: three stride-2 convolutions from RGB [batch, 3, h, w]
 * to `latent_sample` [batch, 4, h/8, w/8] (the latents' mean, as diffusers' ONNX export of
 * `latent_dist` and the demo model's export give it).
 */
export function buildVaeEncoder(seed: number, latentChannels = 4): Uint8Array {
  const g = new GraphBuilder('vae_encoder', seed);
  const nn = new Layers(g);
  const groups = 4;
  const x = g.input('sample', ElemType.FLOAT, ['batch', 3, 'height', 'width']);
  let h = nn.conv(x, 3, 16, 3);
  h = nn.resnet(h, 16, 16, groups);
  h = nn.conv(h, 16, 16, 3, 2);
  h = nn.conv(nn.silu(h), 16, 32, 3, 2);
  h = nn.resnet(h, 32, 32, groups);
  h = nn.conv(nn.silu(h), 32, 32, 3, 2);
  h = nn.spatialAttention(h, 32, groups);
  g.op('Identity', [nn.conv(nn.silu(nn.groupNorm(h, 32, groups)), 32, latentChannels, 3, 1, 0.5)], {}, 'latent_sample');
  g.output('latent_sample', ElemType.FLOAT, ['batch', latentChannels, 'latent_height', 'latent_width']);
  return g.build(OPSET).model;
}

const addedToken = (content: string) => ({
  __type: 'AddedToken',
  content,
  lstrip: false,
  normalized: true,
  rstrip: false,
  single_word: false,
});

/** Writes one fixture model into `dir` (replacing it). `clipDir` holds vocab.json and merges.txt. */
export function writeFixtureModel(dir: string, spec: FixtureSpec, clipDir: string): void {
  rmSync(dir, { recursive: true, force: true });
  const write = (rel: string, data: string | Uint8Array) => {
    const file = path.join(dir, rel);
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, data);
  };
  const json = (v: unknown) => `${JSON.stringify(v, null, 2)}\n`;

  write(
    'model_index.json',
    json({
      _class_name: 'ORTStableDiffusionPipeline',
      _diffusers_version: '0.30.0',
      feature_extractor: [null, null],
      requires_safety_checker: false,
      safety_checker: [null, null],
      scheduler: ['diffusers', spec.scheduler._class_name],
      text_encoder: ['optimum', 'ORTModelTextEncoder'],
      tokenizer: ['transformers', 'CLIPTokenizer'],
      unet: ['optimum', 'ORTModelUnet'],
      vae_decoder: ['optimum', 'ORTModelVaeDecoder'],
      vae_encoder: ['optimum', 'ORTModelVaeEncoder'],
    }),
  );
  mkdirSync(path.join(dir, 'tokenizer'), { recursive: true });
  copyFileSync(path.join(clipDir, 'vocab.json'), path.join(dir, 'tokenizer/vocab.json'));
  copyFileSync(path.join(clipDir, 'merges.txt'), path.join(dir, 'tokenizer/merges.txt'));
  write(
    'tokenizer/special_tokens_map.json',
    json({
      bos_token: addedToken('<|startoftext|>'),
      eos_token: addedToken('<|endoftext|>'),
      pad_token: spec.padToken,
      unk_token: addedToken('<|endoftext|>'),
    }),
  );
  write(
    'tokenizer/tokenizer_config.json',
    json({
      add_prefix_space: false,
      bos_token: addedToken('<|startoftext|>'),
      do_lower_case: true,
      eos_token: addedToken('<|endoftext|>'),
      errors: 'replace',
      model_max_length: SEQ,
      pad_token: spec.padToken,
      tokenizer_class: 'CLIPTokenizer',
      unk_token: addedToken('<|endoftext|>'),
    }),
  );
  write('scheduler/scheduler_config.json', json(spec.scheduler));
  write('text_encoder/model.onnx', buildTextEncoder(spec.seed + 1, spec.hidden));
  write(
    'text_encoder/config.json',
    json({ hidden_size: spec.hidden, max_position_embeddings: SEQ, vocab_size: VOCAB }),
  );
  const unet = buildUnet(spec.seed + 2, spec.hidden, spec.timestepType, false, spec.unetScale ?? 1);
  write('unet/model.onnx', unet.model);
  write('unet/model.onnx_data', unet.externalData!);
  write(
    'unet/config.json',
    json({ in_channels: 4, out_channels: 4, cross_attention_dim: spec.hidden, sample_size: 8 }),
  );
  write('vae_decoder/model.onnx', buildVaeDecoder(spec.seed + 3));
  write('vae_decoder/config.json', json({ latent_channels: 4, out_channels: 3, scaling_factor: 0.18215 }));
  write('vae_encoder/model.onnx', buildVaeEncoder(spec.seed + 4));
  write('vae_encoder/config.json', json({ in_channels: 3, latent_channels: 4, scaling_factor: 0.18215 }));
}

/** A fingerprint of what the builder would write: its sources, the spec and the vocabulary. */
export function fixtureStamp(spec: FixtureSpec, clipDir: string): string {
  const h = createHash('sha256');
  h.update(JSON.stringify(spec));
  for (const f of BUILDER_SOURCES) h.update(readFileSync(path.join(import.meta.dirname, f)));
  h.update(readFileSync(path.join(clipDir, 'vocab.json')));
  h.update(readFileSync(path.join(clipDir, 'merges.txt')));
  return h.digest('hex');
}
