/**
 * `atelier.json`: optional metadata a model folder may carry next to model_index.json, for the
 * people choosing and prompting the model — what it draws, the words it knows, its native size.
 * The engine never needs it to generate; a missing or unreadable file just means "nothing known".
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';

export const MODEL_CARD_FILE = 'atelier.json';

const Side = z
  .number()
  .int()
  .min(64)
  .max(2048)
  .refine((v) => v % 8 === 0);

const ModelCardFile = z.object({
  name: z.string().min(1).max(200).optional(),
  description: z.string().max(2000).optional(),
  /** The size the model was trained at. Unit: pixels. */
  width: Side.optional(),
  height: Side.optional(),
  /** Words the model was trained on, by kind (e.g. shapes, colours, positions). */
  vocabulary: z.record(z.string().max(100), z.array(z.string().max(100)).max(200)).optional(),
  examples: z.array(z.string().max(500)).max(50).optional(),
  /** A test fixture with random weights: it draws noise, and the app says so wherever it lists it. */
  fixture: z.boolean().optional(),
});

export interface ModelCard {
  /** A person-readable name, when the folder declares one. */
  name: string | null;
  /** What the model can draw, in a sentence or two. */
  description: string | null;
  /** The size the model was trained at and draws best; null when the folder does not say. Unit: pixels. */
  nativeSize: { width: number; height: number } | null;
  /** The caption words the model knows, by kind; null for open-vocabulary models. */
  vocabulary: Record<string, string[]> | null;
  /** Prompts that show what the model does. */
  examples: string[];
  /** True for a test fixture with random weights (it draws noise). */
  fixture: boolean;
}

export const EMPTY_MODEL_CARD: ModelCard = {
  name: null,
  description: null,
  nativeSize: null,
  vocabulary: null,
  examples: [],
  fixture: false,
};

/** Reads `atelier.json` from a model folder; a missing or malformed file gives the empty card. */
export async function readModelCard(dir: string): Promise<ModelCard> {
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(path.join(dir, MODEL_CARD_FILE), 'utf8'));
  } catch {
    return EMPTY_MODEL_CARD;
  }
  const r = ModelCardFile.safeParse(raw);
  if (!r.success) return EMPTY_MODEL_CARD;
  const c = r.data;
  return {
    name: c.name ?? null,
    description: c.description ?? null,
    nativeSize: c.width !== undefined && c.height !== undefined ? { width: c.width, height: c.height } : null,
    vocabulary: c.vocabulary ?? null,
    examples: c.examples ?? [],
    fixture: c.fixture ?? false,
  };
}
