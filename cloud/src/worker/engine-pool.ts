/**
 * One warm engine session per model, shared by every job this worker runs. The first job for a
 * model loads it (concurrent first jobs wait on the same load); a load that fails is forgotten so
 * the next job tries again.
 */
import type { ImageMetadata, ResolvedGenerateRequest } from '@atelier/common';

/** One image as the engine returns it. */
export interface EngineImage {
  index: number;
  seed: number;
  width: number;
  height: number;
  png: Uint8Array;
  thumbnail: { mime: string; bytes: Uint8Array };
  metadata: ImageMetadata;
  sha256: string;
}

export interface EngineProgress {
  /** The batch image the step belongs to (0-based). */
  imageIndex: number;
  /** 1-based: the step of that image just finished, out of `total` steps per image. */
  step: number;
  total: number;
}

/** PNG or JPEG bytes of a request's starting image and mask. */
export interface EngineInputs {
  initImage?: Uint8Array | undefined;
  mask?: Uint8Array | undefined;
}

/** What the worker needs from a loaded model (the engine's DiffusionModel, in-thread or hosted). */
export interface WarmModel {
  generate(
    req: ResolvedGenerateRequest,
    opts: {
      signal: AbortSignal;
      onProgress: (p: EngineProgress) => void;
      /** The bytes of the starting image and mask `req` names (decision 0150: beside the request). */
      inputs?: EngineInputs | undefined;
    },
  ): Promise<{ images: EngineImage[] }>;
  dispose(): Promise<void> | void;
}

export type ModelLoader = (modelId: string, modelDir: string) => Promise<WarmModel>;

export interface EnginePool {
  get(modelId: string, modelDir: string): Promise<WarmModel>;
  /** Models loaded so far (for metrics and tests). */
  loaded(): string[];
  /**
   * Runs `fn` while holding the device: one generation on the engine at a time per worker (one
   * GPU), so a second job slot overlaps its upload and bookkeeping with the next generation
   * instead of splitting the device between two. Waiters go first come, first served.
   */
  exclusive<T>(fn: () => Promise<T>): Promise<T>;
  dispose(): Promise<void>;
}

export function createEnginePool(load: ModelLoader): EnginePool {
  const models = new Map<string, Promise<WarmModel>>();
  let device: Promise<unknown> = Promise.resolve();
  return {
    exclusive(fn) {
      const run = device.then(fn, fn);
      device = run.catch(() => undefined);
      return run;
    },
    get(modelId, modelDir) {
      let p = models.get(modelId);
      if (!p) {
        p = load(modelId, modelDir);
        models.set(modelId, p);
        p.catch(() => {
          if (models.get(modelId) === p) models.delete(modelId);
        });
      }
      return p;
    },
    loaded: () => [...models.keys()],
    async dispose() {
      const all = [...models.values()];
      models.clear();
      for (const p of all) {
        const m = await p.catch(() => null);
        await m?.dispose();
      }
    },
  };
}
