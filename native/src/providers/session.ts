import { mkdirSync, renameSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { InferenceSession } from 'onnxruntime-node';
import { onnxruntimeVersion } from './detect.ts';

export interface SessionSettings {
  /** onnxruntime execution provider name ('cpu', 'cuda', 'dml', 'coreml'). */
  provider: string;
  /** Intra-op threads (the CPU provider's compute pool). Default: physical cores, see threads.ts. */
  threads: number;
}

/**
 * The explicit session options every engine session uses. Inter-op parallelism is off
 * (sequential execution, 1 inter-op thread): the diffusion graphs are a chain, and a second pool
 * would only compete with the intra-op threads for the same cores.
 */
export function sessionOptions(s: SessionSettings): InferenceSession.SessionOptions {
  return {
    executionProviders: [s.provider],
    intraOpNumThreads: s.threads,
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
    executionMode: 'sequential',
    enableCpuMemArena: true,
    enableMemPattern: true,
  };
}

export interface CacheKey {
  /** Root of the optimised-model cache (e.g. ~/.cache/atelier/ort). */
  cacheDir: string;
  /** sha256 of the model folder: a changed model never reuses another's optimised graph. */
  modelHash: string;
  provider: string;
  /** The component file name inside the model, e.g. 'unet' or 'text_encoder'. */
  component: string;
}

/**
 * Where the optimised graph of one model component lives. Keyed by onnxruntime version,
 * provider and model hash, because an 'all'-level optimised graph contains provider- and
 * version-specific fused kernels that are only valid for the runtime that wrote it.
 */
export function optimizedModelPath(k: CacheKey): string {
  return path.join(
    k.cacheDir,
    `ort-${onnxruntimeVersion()}`,
    k.provider,
    k.modelHash.slice(0, 32),
    `${k.component.replace(/[^a-z0-9_-]/gi, '_')}.onnx`,
  );
}

export interface CachedSession {
  session: InferenceSession;
  /** True when the optimised graph came from the cache (the fast path). */
  fromCache: boolean;
  /** Which file the session was created from. */
  file: string;
}

/**
 * Opens a session for `onnxPath`, reusing the optimised graph from an earlier load when there is
 * one. The first load optimises at level 'all' and asks onnxruntime to write the result next to
 * a temporary name, renamed into place only once the session exists, so a crash never leaves a
 * half-written cache file that a later load would trust. Later loads read that file with
 * optimisation disabled: the graph is already optimised, which is what makes them fast.
 *
 * The optimised graph is written with its weights inline, so it does not depend on the
 * original's external data file (a > 2 GB UNet would exceed protobuf's limit; for those the
 * cache is skipped and the original is loaded — see `maxCacheableBytes`).
 */
export async function openCachedSession(
  onnxPath: string,
  key: CacheKey,
  settings: SessionSettings,
  opts: { maxCacheableBytes?: number } = {},
): Promise<CachedSession> {
  const base = sessionOptions(settings);
  const cached = optimizedModelPath(key);
  if (isFile(cached)) {
    try {
      const session = await InferenceSession.create(cached, { ...base, graphOptimizationLevel: 'disabled' });
      return { session, fromCache: true, file: cached };
    } catch {
      // A cache file from an interrupted write or another runtime build: rebuild it below.
      rmSync(cached, { force: true });
    }
  }
  const max = opts.maxCacheableBytes ?? 1.8 * 1024 ** 3;
  if (componentBytes(onnxPath) > max) {
    return { session: await InferenceSession.create(onnxPath, base), fromCache: false, file: onnxPath };
  }
  mkdirSync(path.dirname(cached), { recursive: true });
  const tmp = `${cached}.${process.pid}.${Date.now()}.tmp`;
  try {
    // Severity 3 (errors only): onnxruntime warns that an 'all'-level graph is hardware specific,
    // which is exactly why the cache key holds the provider and runtime version.
    const session = await InferenceSession.create(onnxPath, {
      ...base,
      optimizedModelFilePath: tmp,
      logSeverityLevel: 3,
    });
    if (isFile(tmp)) renameSync(tmp, cached);
    return { session, fromCache: false, file: onnxPath };
  } finally {
    rmSync(tmp, { force: true });
  }
}

function isFile(p: string): boolean {
  try {
    return statSync(p).isFile();
  } catch {
    return false;
  }
}

/** Size of a component's graph plus any external weight files beside it. */
function componentBytes(onnxPath: string): number {
  try {
    return statSync(onnxPath).size + externalDataBytes(onnxPath);
  } catch {
    return 0;
  }
}

function externalDataBytes(onnxPath: string): number {
  const dir = path.dirname(onnxPath);
  let total = 0;
  for (const name of ['model.onnx_data', 'weights.pb', 'model.onnx.data']) {
    try {
      total += statSync(path.join(dir, name)).size;
    } catch {
      // not present
    }
  }
  return total;
}
