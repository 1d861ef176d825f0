import { z } from 'zod';

/**
 * Generation metadata stored in every PNG's `invokeai_metadata` tEXt chunk and in both
 * databases. Field names are InvokeAI's, so images stay interoperable with it.
 */
export const ImageMetadata = z.object({
  positive_prompt: z.string(),
  negative_prompt: z.string(),
  seed: z.number().int().min(0),
  steps: z.number().int().min(1),
  cfg_scale: z.number(),
  scheduler: z.string(),
  width: z.number().int().positive(),
  height: z.number().int().positive(),
  model: z.object({ name: z.string(), hash: z.string().optional() }).loose(),
  generation_mode: z.string(),
  app_version: z.string(),
  /** Atelier additions: the engine that made the image and where it ran. */
  engine_version: z.string().optional(),
  execution_provider: z.string().optional(),
});
export type ImageMetadata = z.infer<typeof ImageMetadata>;

export const METADATA_PNG_KEY = 'invokeai_metadata';
