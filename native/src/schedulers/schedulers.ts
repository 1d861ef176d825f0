/**
 * Euler, Euler ancestral, DDIM (η = 0) and LCM, following diffusers' EulerDiscreteScheduler,
 * EulerAncestralDiscreteScheduler, DDIMScheduler and LCMScheduler step for step. Schedules are
 * computed in float64; latents are float32.
 */
import { AppError, type Scheduler as SchedulerName } from '@atelier/common';
import { defaultSpacing, type SchedulerConfig } from './config.ts';
import type { Mt19937 } from './random.ts';

export interface DiffusionScheduler {
  readonly name: SchedulerName;
  /** The timestep given to the UNet at each step (fractional for Euler with linspace spacing). */
  readonly timesteps: readonly number[];
  /** Euler-family noise levels, one more than steps (the last is 0); empty for DDIM and LCM. */
  readonly sigmas: readonly number[];
  /** The standard deviation of the initial latent noise. */
  readonly initNoiseSigma: number;
  /**
   * The UNet input for step `i` (Euler-family divide by √(σ²+1); others pass through), written to
   * `out` (a new array if not given; may be `sample` itself) and returned.
   */
  scaleModelInput(sample: Float32Array, i: number, out?: Float32Array): Float32Array;
  /**
   * The latents after step `i`, given the UNet's (guided) output, written to `out` (a new array if
   * not given; may be `sample` itself, for an in-place step) and returned. `rng` supplies ancestral noise.
   */
  step(modelOutput: Float32Array, i: number, sample: Float32Array, rng: Mt19937, out?: Float32Array): Float32Array;
  /**
   * Clean latents `x0` noised to the level the sample has at the start of step `i` (diffusers'
   * `add_noise` at `timesteps[i]`): x0 + σᵢ·noise for the Euler family, √ᾱ·x0 + √(1−ᾱ)·noise for
   * DDIM and LCM. Image to image starts from it; inpainting re-noises the kept region with it.
   */
  addNoise(x0: Float32Array, noise: Float32Array, i: number, out?: Float32Array): Float32Array;
}

function alphaNoise(ac: Float64Array, timesteps: readonly number[]) {
  return (x0: Float32Array, noise: Float32Array, i: number, out = new Float32Array(x0.length)) => {
    const alpha = ac[timesteps[i]!]!;
    const a = Math.sqrt(alpha);
    const b = Math.sqrt(1 - alpha);
    for (let j = 0; j < x0.length; j++) out[j] = a * x0[j]! + b * noise[j]!;
    return out;
  };
}

/** NumPy's round(): halves go to the even neighbour. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** ᾱ_t for every training timestep. */
export function alphasCumprod(c: SchedulerConfig): Float64Array {
  const n = c.numTrainTimesteps;
  const betas = new Float64Array(n);
  if (c.trainedBetas) betas.set(c.trainedBetas);
  else if (c.betaSchedule === 'linear')
    for (let i = 0; i < n; i++) betas[i] = c.betaStart + ((c.betaEnd - c.betaStart) * i) / (n - 1);
  else if (c.betaSchedule === 'scaled_linear') {
    const a = Math.sqrt(c.betaStart);
    const b = Math.sqrt(c.betaEnd);
    for (let i = 0; i < n; i++) betas[i] = (a + ((b - a) * i) / (n - 1)) ** 2;
  } else {
    const alphaBar = (t: number) => Math.cos(((t + 0.008) / 1.008) * (Math.PI / 2)) ** 2;
    for (let i = 0; i < n; i++) betas[i] = Math.min(1 - alphaBar((i + 1) / n) / alphaBar(i / n), 0.999);
  }
  const out = new Float64Array(n);
  let prod = 1;
  for (let i = 0; i < n; i++) out[i] = prod *= 1 - betas[i]!;
  return out;
}

/** Discrete timesteps for DDIM-style schedulers (integers, descending). */
export function discreteTimesteps(
  c: SchedulerConfig,
  steps: number,
  spacing: SchedulerConfig['timestepSpacing'],
): number[] {
  const n = c.numTrainTimesteps;
  const out: number[] = [];
  if (spacing === 'linspace') {
    for (let i = steps - 1; i >= 0; i--) out.push(roundHalfEven(steps === 1 ? 0 : ((n - 1) * i) / (steps - 1)));
  } else if (spacing === 'trailing') {
    const ratio = n / steps;
    for (let i = 0; i < steps; i++) out.push(roundHalfEven(n - i * ratio) - 1);
  } else {
    const ratio = Math.floor(n / steps);
    for (let i = steps - 1; i >= 0; i--) out.push(i * ratio + c.stepsOffset);
  }
  return out;
}

/** Euler-family timesteps: like the discrete ones, but linspace spacing keeps fractions. */
function eulerTimesteps(
  c: SchedulerConfig,
  steps: number,
  spacing: NonNullable<SchedulerConfig['timestepSpacing']>,
): number[] {
  if (spacing !== 'linspace') return discreteTimesteps(c, steps, spacing);
  const n = c.numTrainTimesteps;
  const out: number[] = [];
  for (let i = steps - 1; i >= 0; i--) out.push(steps === 1 ? 0 : ((n - 1) * i) / (steps - 1));
  return out;
}

/** σ(t) = √((1−ᾱ)/ᾱ), linearly interpolated at fractional t. */
function sigmaAt(ac: Float64Array, t: number): number {
  const sig = (i: number) => Math.sqrt((1 - ac[i]!) / ac[i]!);
  const lo = Math.max(0, Math.min(ac.length - 1, Math.floor(t)));
  const hi = Math.min(ac.length - 1, lo + 1);
  const f = Math.max(0, Math.min(1, t - lo));
  return sig(lo) + (sig(hi) - sig(lo)) * f;
}

export function createScheduler(name: SchedulerName, config: SchedulerConfig, steps: number): DiffusionScheduler {
  if (!Number.isInteger(steps) || steps < 1)
    throw new AppError('VALIDATION_FAILED', 'steps must be a whole number ≥ 1');
  switch (name) {
    case 'euler':
    case 'euler_a':
      return eulerScheduler(name, config, steps);
    case 'ddim':
      return ddimScheduler(config, steps);
    case 'lcm':
      return lcmScheduler(config, steps);
  }
}

function predictX0Sigma(c: SchedulerConfig, out: number, x: number, sigma: number): number {
  return c.predictionType === 'epsilon'
    ? x - sigma * out
    : out * (-sigma / Math.sqrt(sigma * sigma + 1)) + x / (sigma * sigma + 1);
}

function eulerScheduler(name: 'euler' | 'euler_a', c: SchedulerConfig, steps: number): DiffusionScheduler {
  const spacing = c.timestepSpacing ?? defaultSpacing(name);
  const ac = alphasCumprod(c);
  const timesteps = eulerTimesteps(c, steps, spacing);
  const sigmas = [...timesteps.map((t) => sigmaAt(ac, t)), 0];
  const maxSigma = Math.max(...sigmas);
  return {
    name,
    timesteps,
    sigmas,
    initNoiseSigma: spacing === 'leading' ? Math.sqrt(maxSigma * maxSigma + 1) : maxSigma,
    addNoise(x0, noise, i, out = new Float32Array(x0.length)) {
      const sigma = sigmas[i]!;
      for (let j = 0; j < x0.length; j++) out[j] = x0[j]! + sigma * noise[j]!;
      return out;
    },
    scaleModelInput(sample, i, out = new Float32Array(sample.length)) {
      const k = 1 / Math.sqrt(sigmas[i]! ** 2 + 1);
      for (let j = 0; j < sample.length; j++) out[j] = sample[j]! * k;
      return out;
    },
    step(modelOutput, i, sample, rng, out = new Float32Array(sample.length)) {
      const sigma = sigmas[i]!;
      const next = sigmas[i + 1]!;
      let target = next;
      let sigmaUp = 0;
      if (name === 'euler_a') {
        sigmaUp = Math.sqrt((next * next * (sigma * sigma - next * next)) / (sigma * sigma));
        target = Math.sqrt(next * next - sigmaUp * sigmaUp);
      }
      const dt = target - sigma;
      for (let j = 0; j < sample.length; j++) {
        const x = sample[j]!;
        const x0 = predictX0Sigma(c, modelOutput[j]!, x, sigma);
        out[j] = x + ((x - x0) / sigma) * dt;
      }
      if (name === 'euler_a') for (let j = 0; j < out.length; j++) out[j] = out[j]! + rng.nextGaussian() * sigmaUp;
      return out;
    },
  };
}

/** x̂₀ from the model output `out` at sample `x`, with `sa` = √ᾱ_t and `sb` = √(1−ᾱ_t). */
function predictX0Alpha(c: SchedulerConfig, out: number, x: number, sa: number, sb: number): number {
  const x0 = c.predictionType === 'epsilon' ? (x - sb * out) / sa : sa * x - sb * out;
  return c.clipSample ? Math.max(-c.clipSampleRange, Math.min(c.clipSampleRange, x0)) : x0;
}

/** ε̂ from the model output `out` at sample `x` (see predictX0Alpha). */
function predictEpsAlpha(c: SchedulerConfig, out: number, x: number, sa: number, sb: number): number {
  return c.predictionType === 'epsilon' ? out : sa * out + sb * x;
}

/** Pass-through model input (DDIM, LCM): a copy when `out` is another array. */
function copyInput(sample: Float32Array, _i: number, out?: Float32Array): Float32Array {
  if (!out) return sample;
  if (out !== sample) out.set(sample);
  return out;
}

function ddimScheduler(c: SchedulerConfig, steps: number): DiffusionScheduler {
  const ac = alphasCumprod(c);
  const finalAlpha = c.setAlphaToOne ? 1 : ac[0]!;
  const timesteps = discreteTimesteps(c, steps, c.timestepSpacing ?? defaultSpacing('ddim'));
  const stride = Math.floor(c.numTrainTimesteps / steps);
  return {
    name: 'ddim',
    timesteps,
    sigmas: [],
    initNoiseSigma: 1,
    addNoise: alphaNoise(ac, timesteps),
    scaleModelInput: copyInput,
    step(modelOutput, i, sample, _rng, out = new Float32Array(sample.length)) {
      const t = timesteps[i]!;
      const prevT = t - stride;
      const alpha = ac[t]!;
      const alphaPrev = prevT >= 0 ? ac[prevT]! : finalAlpha;
      const a = Math.sqrt(alphaPrev);
      const b = Math.sqrt(1 - alphaPrev);
      const sa = Math.sqrt(alpha);
      const sb = Math.sqrt(1 - alpha);
      for (let j = 0; j < sample.length; j++) {
        const o = modelOutput[j]!;
        const x = sample[j]!;
        out[j] = a * predictX0Alpha(c, o, x, sa, sb) + b * predictEpsAlpha(c, o, x, sa, sb);
      }
      return out;
    },
  };
}

/** LCM's timesteps: `steps` evenly chosen from the distillation schedule. */
export function lcmTimesteps(c: SchedulerConfig, steps: number): number[] {
  const original = c.originalInferenceSteps;
  if (steps > original)
    throw new AppError('VALIDATION_FAILED', `the lcm scheduler supports at most ${original} steps for this model`);
  const k = Math.floor(c.numTrainTimesteps / original);
  const origin: number[] = [];
  for (let i = original; i >= 1; i--) origin.push(i * k - 1);
  const out: number[] = [];
  for (let i = 0; i < steps; i++) out.push(origin[Math.floor((i * original) / steps)]!);
  return out;
}

function lcmScheduler(c: SchedulerConfig, steps: number): DiffusionScheduler {
  const ac = alphasCumprod(c);
  const finalAlpha = c.setAlphaToOne ? 1 : ac[0]!;
  const timesteps = lcmTimesteps(c, steps);
  return {
    name: 'lcm',
    timesteps,
    sigmas: [],
    initNoiseSigma: 1,
    addNoise: alphaNoise(ac, timesteps),
    scaleModelInput: copyInput,
    step(modelOutput, i, sample, rng, out = new Float32Array(sample.length)) {
      const t = timesteps[i]!;
      const last = i === timesteps.length - 1;
      const prevT = last ? t : timesteps[i + 1]!;
      const alpha = ac[t]!;
      const alphaPrev = prevT >= 0 ? ac[prevT]! : finalAlpha;
      const scaled = t * c.timestepScaling;
      const cSkip = 0.25 / (scaled * scaled + 0.25);
      const cOut = scaled / Math.sqrt(scaled * scaled + 0.25);
      const sa = Math.sqrt(alpha);
      const sb = Math.sqrt(1 - alpha);
      for (let j = 0; j < sample.length; j++) {
        const x = sample[j]!;
        out[j] = cOut * predictX0Alpha(c, modelOutput[j]!, x, sa, sb) + cSkip * x;
      }
      if (!last) {
        const a = Math.sqrt(alphaPrev);
        const b = Math.sqrt(1 - alphaPrev);
        for (let j = 0; j < out.length; j++) out[j] = a * out[j]! + b * rng.nextGaussian();
      }
      return out;
    },
  };
}
