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
  /** Image to image and inpainting (InvokeAI's names): how much of the schedule ran, 0–1. */
  strength: z.number().min(0).max(1).optional(),
  /** The starting image's reference (a gallery image id, an input id, or a file name). */
  init_image: z.string().optional(),
  /** Atelier addition (InvokeAI has no core field for it): the inpainting mask's reference. */
  init_mask: z.string().optional(),
  /** Atelier additions: the engine that made the image and where it ran. */
  engine_version: z.string().optional(),
  execution_provider: z.string().optional(),
});
export type ImageMetadata = z.infer<typeof ImageMetadata>;

export const METADATA_PNG_KEY = 'invokeai_metadata';
