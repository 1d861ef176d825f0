// @atelier/engine public API. The pipeline half (engine-core) comes first; the runtime half
// (providers, model store, host, CLI) adds its exports in its own block at the bottom.
export {
  loadModel,
  THUMBNAIL_SIZE,
  type DiffusionModel,
  type GenerateOptions,
  type GeneratedImage,
  type GenerationResult,
  type LoadOptions,
  type ProgressEvent,
} from './pipeline/diffusion-model.ts';
export { readPngMetadata, metadataText } from './pipeline/metadata.ts';
export { ENGINE_VERSION } from './pipeline/version.ts';
export { hashModelDir, listModelFiles } from './model/hash.ts';
export { DEFAULT_SCALING_FACTOR, REQUIRED_FILES } from './model/model-folder.ts';
export { ClipTokenizer } from './tokenizer/clip-tokenizer.ts';
export { createScheduler, type DiffusionScheduler } from './schedulers/schedulers.ts';
export { parseSchedulerConfig, type SchedulerConfig } from './schedulers/config.ts';
export { Mt19937 } from './schedulers/random.ts';
export { decodePng, encodePng, readPngText, downscale, type RawImage } from './png/png.ts';
export { FIXTURES } from './onnx-build/sd-fixture.ts';
