import { describe, expect, it } from 'vitest';
import { parseSchedulerConfig } from './config.ts';
import { Mt19937 } from './random.ts';
import { alphasCumprod, createScheduler, discreteTimesteps, lcmTimesteps, roundHalfEven } from './schedulers.ts';

// Stable Diffusion 1.5's scheduler/scheduler_config.json.
const SD15 = parseSchedulerConfig({
  _class_name: 'PNDMScheduler',
  beta_end: 0.012,
  beta_schedule: 'scaled_linear',
  beta_start: 0.00085,
  clip_sample: false,
  num_train_timesteps: 1000,
  set_alpha_to_one: false,
  skip_prk_steps: true,
  steps_offset: 1,
  timestep_spacing: 'leading',
  trained_betas: null,
});

/** ᾱ computed a second way: exp of the summed logs, β from its closed form. */
function referenceAlphaBar(t: number): number {
  let logSum = 0;
  for (let i = 0; i <= t; i++) {
    const sqrtBeta = Math.sqrt(0.00085) + (i / 999) * (Math.sqrt(0.012) - Math.sqrt(0.00085));
    logSum += Math.log1p(-sqrtBeta * sqrtBeta);
  }
  return Math.exp(logSum);
}
const refSigma = (t: number) => Math.sqrt(1 / referenceAlphaBar(t) - 1);

describe('noise schedule for SD 1.5', () => {
  it('matches ᾱ from the formula at every timestep, and published end points', () => {
    const ac = alphasCumprod(SD15);
    for (const t of [0, 1, 250, 500, 901, 999]) expect(ac[t]).toBeCloseTo(referenceAlphaBar(t), 12);
    expect(ac[0]).toBeCloseTo(0.99915, 12); // 1 − β₀ = 1 − 0.00085
    expect(ac[999]).toBeCloseTo(0.0046601, 6);
    expect(Math.sqrt((1 - ac[999]!) / ac[999]!)).toBeCloseTo(14.6146, 4); // SD's familiar σ_max
  });
});

describe('Euler / Euler ancestral', () => {
  it('leading spacing, 10 steps: timesteps 901…1 and σ from the formula', () => {
    const s = createScheduler('euler', SD15, 10);
    expect(s.timesteps).toEqual([901, 801, 701, 601, 501, 401, 301, 201, 101, 1]);
    s.timesteps.forEach((t, i) => expect(s.sigmas[i]).toBeCloseTo(refSigma(t), 10));
    expect(s.sigmas).toHaveLength(11);
    expect(s.sigmas[10]).toBe(0);
    expect(s.sigmas[0]).toBeCloseTo(8.39068, 4);
    expect(s.sigmas[9]).toBeCloseTo(0.0413144, 6);
    // Leading spacing starts from √(σ_max² + 1).
    expect(s.initNoiseSigma).toBeCloseTo(8.450065, 5);
  });

  it('linspace spacing (the Euler default) keeps fractional timesteps and interpolates σ', () => {
    const cfg = { ...SD15, timestepSpacing: null };
    const s = createScheduler('euler_a', cfg, 10);
    expect(s.timesteps).toEqual([999, 888, 777, 666, 555, 444, 333, 222, 111, 0]);
    expect(s.sigmas[0]).toBeCloseTo(14.6146, 4);
    expect(s.initNoiseSigma).toBeCloseTo(14.6146, 4);
    const frac = createScheduler('euler', cfg, 4).timesteps;
    expect(frac).toEqual([999, 666, 333, 0]);
    const s3 = createScheduler('euler', cfg, 7);
    expect(s3.timesteps[1]).toBeCloseTo(832.5, 10); // 999·5/6
    expect(s3.sigmas[1]).toBeCloseTo((refSigma(832) + refSigma(833)) / 2, 10);
  });

  it('trailing spacing rounds halves to even like NumPy', () => {
    const cfg = { ...SD15, timestepSpacing: 'trailing' as const };
    expect(createScheduler('euler', cfg, 4).timesteps).toEqual([999, 749, 499, 249]);
    expect(discreteTimesteps(cfg, 16, 'trailing')).toEqual([
      999, 937, 874, 811, 749, 687, 624, 561, 499, 437, 374, 311, 249, 187, 124, 61,
    ]);
    expect([0.5, 1.5, 2.5, -0.5, 812.5, 937.5].map(roundHalfEven)).toEqual([0, 2, 2, -0, 812, 938]);
  });

  it('a perfect ε prediction moves x₀ + σᵢε to x₀ + σᵢ₊₁ε', () => {
    const s = createScheduler('euler', SD15, 10);
    const x0 = Float32Array.of(0.5, -1, 2);
    const eps = Float32Array.of(1, 0.25, -0.5);
    const i = 3;
    const xt = x0.map((v, j) => v + s.sigmas[i]! * eps[j]!);
    const next = s.step(eps, i, xt, new Mt19937(1));
    next.forEach((v, j) => expect(v).toBeCloseTo(x0[j]! + s.sigmas[i + 1]! * eps[j]!, 5));
    // The UNet sees the sample divided by √(σ²+1).
    expect(s.scaleModelInput(Float32Array.of(2), 0)[0]).toBeCloseTo(2 / Math.sqrt(s.sigmas[0]! ** 2 + 1), 6);
  });

  it('v-prediction recovers x₀ the same way', () => {
    const cfg = { ...SD15, predictionType: 'v_prediction' as const };
    const s = createScheduler('euler', cfg, 5);
    const x0 = 0.7;
    const eps = -1.3;
    const i = 2;
    const sigma = s.sigmas[i]!;
    const a = 1 / Math.sqrt(sigma * sigma + 1); // √ᾱ
    const b = sigma * a; // √(1−ᾱ)
    const v = a * eps - b * x0;
    const next = s.step(Float32Array.of(v), i, Float32Array.of(x0 + sigma * eps), new Mt19937(1));
    expect(next[0]).toBeCloseTo(x0 + s.sigmas[i + 1]! * eps, 5);
  });

  it('ancestral steps add seeded noise but end exactly at x₀ on the last step', () => {
    const s = createScheduler('euler_a', SD15, 4);
    const x0 = Float32Array.of(0.3, -0.2);
    const eps = Float32Array.of(1, -1);
    const xt = (i: number) => x0.map((v, j) => v + s.sigmas[i]! * eps[j]!);
    const a = s.step(eps, 1, xt(1), new Mt19937(7));
    const b = s.step(eps, 1, xt(1), new Mt19937(7));
    const c = s.step(eps, 1, xt(1), new Mt19937(8));
    expect(a).toEqual(b);
    expect(a).not.toEqual(c);
    const last = s.step(eps, 3, xt(3), new Mt19937(7));
    last.forEach((v, j) => expect(v).toBeCloseTo(x0[j]!, 5));
  });
});

describe('DDIM', () => {
  it('leading spacing with steps_offset 1, 10 steps', () => {
    expect(createScheduler('ddim', SD15, 10).timesteps).toEqual([901, 801, 701, 601, 501, 401, 301, 201, 101, 1]);
    expect(createScheduler('ddim', SD15, 3).timesteps).toEqual([667, 334, 1]);
    expect(createScheduler('ddim', { ...SD15, timestepSpacing: 'linspace' }, 4).timesteps).toEqual([999, 666, 333, 0]);
  });

  it('a perfect ε prediction lands on the previous timestep’s marginal; the last uses ᾱ₀ (set_alpha_to_one false)', () => {
    const s = createScheduler('ddim', SD15, 10);
    const ac = alphasCumprod(SD15);
    const x0 = 0.4;
    const eps = 1.1;
    const at = (t: number) => Math.sqrt(ac[t]!) * x0 + Math.sqrt(1 - ac[t]!) * eps;
    expect(s.step(Float32Array.of(eps), 0, Float32Array.of(at(901)), new Mt19937(1))[0]).toBeCloseTo(at(801), 5);
    expect(s.step(Float32Array.of(eps), 9, Float32Array.of(at(1)), new Mt19937(1))[0]).toBeCloseTo(at(0), 5);
    const one = createScheduler('ddim', { ...SD15, setAlphaToOne: true }, 10);
    expect(one.step(Float32Array.of(eps), 9, Float32Array.of(at(1)), new Mt19937(1))[0]).toBeCloseTo(x0, 5);
  });
});

describe('LCM', () => {
  it('takes evenly spaced timesteps from the 50-step distillation schedule', () => {
    expect(lcmTimesteps(SD15, 1)).toEqual([999]);
    expect(lcmTimesteps(SD15, 2)).toEqual([999, 499]);
    expect(lcmTimesteps(SD15, 4)).toEqual([999, 759, 499, 259]);
    expect(lcmTimesteps(SD15, 8)).toEqual([999, 879, 759, 639, 499, 379, 259, 139]);
    expect(() => lcmTimesteps(SD15, 51)).toThrow(/at most 50 steps/);
  });

  it('the last step returns c_out·x̂₀ + c_skip·x with the boundary-condition scalings', () => {
    const s = createScheduler('lcm', SD15, 4);
    const ac = alphasCumprod(SD15);
    const t = 259;
    const x = 0.9;
    const eps = 0.2;
    const x0 = (x - Math.sqrt(1 - ac[t]!) * eps) / Math.sqrt(ac[t]!);
    const scaled = t * 10;
    const cSkip = 0.25 / (scaled ** 2 + 0.25);
    const cOut = scaled / Math.sqrt(scaled ** 2 + 0.25);
    expect(s.step(Float32Array.of(eps), 3, Float32Array.of(x), new Mt19937(1))[0]).toBeCloseTo(
      cOut * x0 + cSkip * x,
      5,
    );
  });
});

describe('scheduler_config.json parsing', () => {
  it('rejects what it cannot honour, naming the key', () => {
    expect(() => parseSchedulerConfig({ beta_schedule: 'sigmoid' })).toThrow(/beta_schedule "sigmoid"/);
    expect(() => parseSchedulerConfig({ prediction_type: 'sample' })).toThrow(/prediction_type/);
    expect(() => parseSchedulerConfig({ num_train_timesteps: 'x' })).toThrow(/num_train_timesteps/);
  });

  it('supports the linear schedule', () => {
    const lin = parseSchedulerConfig({ beta_schedule: 'linear', beta_start: 0.0001, beta_end: 0.02 });
    const ac = alphasCumprod(lin);
    expect(ac[0]).toBeCloseTo(0.9999, 12);
    expect(ac[1]).toBeCloseTo(0.9999 * (1 - (0.0001 + 0.0199 / 999)), 12);
  });
});

describe('Mt19937', () => {
  it('matches the reference generator (seed 5489 → 3499211612) and NumPy’s RandomState(42)', () => {
    const g = new Mt19937(5489);
    expect([g.nextUint32(), g.nextUint32()]).toEqual([3499211612, 581869302]);
    expect(new Mt19937(42).nextDouble()).toBe(0.3745401188473625);
  });
});
