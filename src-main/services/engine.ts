/**
 * What the desktop needs from @atelier/engine, as ports: the off-thread engine host (worker
 * thread in the browser host, utilityProcess in Electron) and the model store. The composition
 * root adapts the engine's real objects to these; tests of the queue use `InMemory*` doubles.
 */
import type { z } from 'zod';
import type {
  ImageMetadata,
  InstalledModel,
  ModelDownload,
  ProviderStatus,
  ResolvedGenerateRequest,
} from '@atelier/common';

export type ProviderStatusValue = z.output<typeof ProviderStatus>;
export type InstalledModelValue = z.output<typeof InstalledModel>;
export type ModelDownloadValue = z.output<typeof ModelDownload>;

export interface EngineProgress {
  /** Steps done over the whole batch. */
  step: number;
  total: number;
  /** Optional low-resolution preview as a data: URL. */
  preview?: string;
  /** Which image of the batch is being made (1-based), for "image 1 of 2". */
  image?: { index: number; count: number };
  /** Present while a large image is decoded in tiles: 1-based tile just decoded, of `tiles`. */
  decode?: { tile: number; tiles: number };
}

export interface EngineImage {
  png: Uint8Array;
  seed: number;
  metadata?: ImageMetadata;
}

export interface EnginePort {
  providers(): Promise<{ providers: ProviderStatusValue[]; threads: number }>;
  /** Rejects with AppError CANCELED when the signal aborts, ENGINE_OUT_OF_MEMORY / ENGINE_PROVIDER_UNAVAILABLE on device failures. */
  generate(
    request: ResolvedGenerateRequest & { modelPath: string },
    opts: {
      signal: AbortSignal;
      onProgress: (p: EngineProgress) => void;
      /** The bytes of the pictures `request.initImage` and `request.mask` name. */
      inputs?: { initImage?: Uint8Array | undefined; mask?: Uint8Array | undefined } | undefined;
    },
  ): Promise<{ images: EngineImage[] }>;
  close(): Promise<void>;
}

export interface ModelStorePort {
  list(): Promise<InstalledModelValue[]>;
  import(path: string, mode: 'copy' | 'link'): Promise<InstalledModelValue>;
  download(
    input: { url: string; sha256?: string; name?: string },
    onProgress: (d: ModelDownloadValue) => void,
  ): Promise<ModelDownloadValue>;
  downloads(): ModelDownloadValue[];
  cancelDownload(id: string): Promise<void>;
  remove(id: string): Promise<void>;
}
