// @atelier/engine public API. The pipeline half (engine-core) comes first; the runtime half
// (providers, model store, host, CLI) adds its exports in its own block at the bottom.
export {
  loadModel,
  THUMBNAIL_SIZE,
  type DiffusionModel,
  type GenerateInputs,
  type GenerateOptions,
  type GeneratedImage,
  type GenerationResult,
  type LoadOptions,
  type ProgressEvent,
} from './pipeline/diffusion-model.ts';
export { readPngMetadata, metadataText } from './pipeline/metadata.ts';
export {
  decodeInputImage,
  featherRadius,
  MAX_INPUT_PIXELS,
  resize as resizeImage,
  sniffImage,
  type InputRole,
} from './pipeline/input-image.ts';
export { ENGINE_VERSION } from './pipeline/version.ts';
export { hashModelDir, listModelFiles } from './model/hash.ts';
export { DEFAULT_SCALING_FACTOR, REQUIRED_FILES } from './model/model-folder.ts';
export { ClipTokenizer } from './tokenizer/clip-tokenizer.ts';
export { createScheduler, type DiffusionScheduler } from './schedulers/schedulers.ts';
export { parseSchedulerConfig, type SchedulerConfig } from './schedulers/config.ts';
export { Mt19937 } from './schedulers/random.ts';
export { decodePng, encodePng, readPngText, downscale, type RawImage } from './png/png.ts';
export { FIXTURES } from './onnx-build/sd-fixture.ts';

// ─── Runtime (engine-runtime): execution providers, model store, off-thread host, CLI ───────────
export {
  bestProvider,
  detectProviders,
  onnxruntimeVersion,
  PROVIDER_NAMES,
  type ProviderName,
  type ProviderReport,
} from './providers/detect.ts';
export { providerEnvironment, type ProviderEnvironment } from './providers/config.ts';
export { physicalCores, resolveThreads } from './providers/threads.ts';
export { sessionOptions, type SessionSettings } from './providers/session.ts';
export { optimizedModelDir, prepareOptimizedModel } from './providers/optimized-cache.ts';
export {
  createModelStore,
  ModelManifest,
  REPO_FIXTURE_MODELS_DIR,
  type DownloadProgress,
  type ModelEntry,
  type ModelStore,
  type ModelStoreOptions,
} from './store/store.ts';
export { platformLocations, storeLocationsFromEnv, type StoreLocations } from './store/config.ts';
export {
  createEngineHost,
  spawnWorkerThread,
  type EngineHost,
  type EngineHostOptions,
  type EngineProcess,
  type HostGenerateOptions,
  type HostGenerationResult,
} from './host/host.ts';
export type { Endpoint, HostReply, HostRequest, LoadedModelInfo, SessionConfig } from './host/protocol.ts';
export { openModel } from './host/open-model.ts';
