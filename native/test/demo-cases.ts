/**
 * The held-out prompts × seeds the semantic tests (and bench/demo.ts) ask the demo model for.
 * Seeds are far from anything the training script uses (it never runs the engine's sampler), and
 * the prompts are written in the plain form a person types, built deterministically from the
 * vocabulary so every colour, shape and background is asked for.
 */
import path from 'node:path';
import type { ResolvedGenerateRequest, Scheduler } from '@atelier/common';
import { COLOUR_NAMES, type Ask, type ColourName, POSITION_NAMES, SHAPE_NAMES } from './pixel-stats.ts';

export const DEMO_MODEL_ID = 'atelier-demo-shapes';
export const DEMO_MODEL_DIR = path.resolve(import.meta.dirname, '../models', DEMO_MODEL_ID);

export interface DemoCase {
  prompt: string;
  seed: number;
  ask: Ask;
}

/** `n` cases: shape i % 3, colours stepped so that every (colour, background) pair comes up. */
export function heldOutCases(n = 40, firstSeed = 900_001): DemoCase[] {
  const cases: DemoCase[] = [];
  for (let i = 0; i < n; i++) {
    const shape = SHAPE_NAMES[i % SHAPE_NAMES.length]!;
    const colour: ColourName = COLOUR_NAMES[i % COLOUR_NAMES.length]!;
    const background: ColourName = COLOUR_NAMES[(i + 1 + Math.floor(i / COLOUR_NAMES.length)) % COLOUR_NAMES.length]!;
    const bg =
      background === colour ? COLOUR_NAMES[(COLOUR_NAMES.indexOf(colour) + 3) % COLOUR_NAMES.length]! : background;
    cases.push({
      prompt: `a ${colour} ${shape} on a ${bg} background`,
      seed: firstSeed + i * 7919,
      ask: { colour, shape, background: bg },
    });
  }
  return cases;
}

/** The held-out cases again, each also naming a size and a place ("a small red circle in the top left on a blue background"). */
export function fullCases(n = 40, firstSeed = 900_001): DemoCase[] {
  return heldOutCases(n, firstSeed).map((c, i) => {
    const position = POSITION_NAMES[(i * 2) % POSITION_NAMES.length]!;
    const size = i % 2 ? 'small' : 'large';
    return {
      prompt: `a ${size} ${c.ask.colour} ${c.ask.shape} in the ${position} on a ${c.ask.background} background`,
      seed: c.seed,
      ask: { ...c.ask, position },
    };
  });
}

/** Each scheduler's default step count in the UI and CLI. */
export const DEFAULT_STEPS: Record<Exclude<Scheduler, 'lcm'>, number> = { euler: 30, euler_a: 30, ddim: 30 };

export function demoRequest(c: DemoCase, over: Partial<ResolvedGenerateRequest> = {}): ResolvedGenerateRequest {
  return {
    prompt: c.prompt,
    negativePrompt: '',
    width: 64,
    height: 64,
    steps: 30,
    guidance: 7.5,
    scheduler: 'euler_a',
    seed: c.seed,
    model: DEMO_MODEL_ID,
    count: 1,
    target: 'local',
    ...over,
  };
}
