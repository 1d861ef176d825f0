/** scheduler_config.json as diffusers writes it, with diffusers' defaults for missing keys. */
import type { Scheduler as SchedulerName } from '@atelier/common';

export type BetaSchedule = 'linear' | 'scaled_linear' | 'squaredcos_cap_v2';
export type TimestepSpacing = 'leading' | 'trailing' | 'linspace';
export type PredictionType = 'epsilon' | 'v_prediction';

export interface SchedulerConfig {
  numTrainTimesteps: number;
  betaStart: number;
  betaEnd: number;
  betaSchedule: BetaSchedule;
  trainedBetas: number[] | null;
  /** null when the file does not say; each scheduler then uses its own diffusers default. */
  timestepSpacing: TimestepSpacing | null;
  stepsOffset: number;
  predictionType: PredictionType;
  setAlphaToOne: boolean;
  clipSample: boolean;
  clipSampleRange: number;
  /** LCM: the step count the model was distilled on (default 50). */
  originalInferenceSteps: number;
  /** LCM: multiplies the timestep in the boundary-condition scalings (default 10). */
  timestepScaling: number;
}

export class SchedulerConfigError extends Error {}

/** Parses the JSON of scheduler_config.json; throws SchedulerConfigError naming a bad key. */
export function parseSchedulerConfig(raw: unknown): SchedulerConfig {
  if (typeof raw !== 'object' || raw === null) throw new SchedulerConfigError('is not a JSON object');
  const o = raw as Record<string, unknown>;
  const num = (key: string, dflt: number): number => {
    const v = o[key];
    if (v === undefined || v === null) return dflt;
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new SchedulerConfigError(`${key} must be a number`);
    return v;
  };
  const bool = (key: string, dflt: boolean): boolean => {
    const v = o[key];
    if (v === undefined || v === null) return dflt;
    if (typeof v !== 'boolean') throw new SchedulerConfigError(`${key} must be true or false`);
    return v;
  };
  const oneOf = <T extends string>(key: string, allowed: readonly T[], dflt: T | null): T | null => {
    const v = o[key];
    if (v === undefined || v === null) return dflt;
    if (typeof v !== 'string' || !(allowed as readonly string[]).includes(v))
      throw new SchedulerConfigError(`${key} ${JSON.stringify(v)} is not supported (use ${allowed.join(', ')})`);
    return v as T;
  };
  const trained = o.trained_betas;
  if (
    trained !== undefined &&
    trained !== null &&
    !(Array.isArray(trained) && trained.every((b) => typeof b === 'number'))
  )
    throw new SchedulerConfigError('trained_betas must be a list of numbers');
  if (o.rescale_betas_zero_snr === true) throw new SchedulerConfigError('rescale_betas_zero_snr is not supported');
  const config: SchedulerConfig = {
    numTrainTimesteps: num('num_train_timesteps', 1000),
    betaStart: num('beta_start', 0.0001),
    betaEnd: num('beta_end', 0.02),
    betaSchedule: oneOf('beta_schedule', ['linear', 'scaled_linear', 'squaredcos_cap_v2'] as const, 'linear')!,
    trainedBetas: Array.isArray(trained) ? (trained as number[]) : null,
    timestepSpacing: oneOf('timestep_spacing', ['leading', 'trailing', 'linspace'] as const, null),
    stepsOffset: num('steps_offset', 0),
    predictionType: oneOf('prediction_type', ['epsilon', 'v_prediction'] as const, 'epsilon')!,
    setAlphaToOne: bool('set_alpha_to_one', true),
    clipSample: bool('clip_sample', false),
    clipSampleRange: num('clip_sample_range', 1),
    originalInferenceSteps: num('original_inference_steps', 50),
    timestepScaling: num('timestep_scaling', 10),
  };
  if (!Number.isInteger(config.numTrainTimesteps) || config.numTrainTimesteps < 2)
    throw new SchedulerConfigError('num_train_timesteps must be a whole number ≥ 2');
  if (config.trainedBetas && config.trainedBetas.length !== config.numTrainTimesteps)
    throw new SchedulerConfigError('trained_betas must have num_train_timesteps entries');
  return config;
}

/** The spacing each scheduler class uses when the config does not set one (diffusers' defaults). */
export function defaultSpacing(name: SchedulerName): TimestepSpacing {
  return name === 'euler' || name === 'euler_a' ? 'linspace' : 'leading';
}
