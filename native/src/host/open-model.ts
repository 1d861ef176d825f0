import { AppError } from '@atelier/common';
import { hashModelDir } from '../model/hash.ts';
import { loadModel, type DiffusionModel } from '../pipeline/diffusion-model.ts';
import { prepareOptimizedModel } from '../providers/optimized-cache.ts';
import { sessionOptions } from '../providers/session.ts';
import type { SessionConfig } from './protocol.ts';

export interface OpenedModel {
  model: DiffusionModel;
  /** Sessions created from the optimised-graph cache (0 or 3). */
  cachedSessions: number;
}

/**
 * Loads a model with the host's explicit session options. With a cache folder, the sessions are
 * created from the optimised copy of the model (built on the first load, reused afterwards)
 * with optimisation disabled; the model keeps its own id and the hash of the original folder,
 * so images record the same model hash either way. Anything wrong with the cache falls back to
 * the original folder, whose loadModel also gives the precise ENGINE_MODEL_INVALID messages.
 */
export async function openModel(
  modelDir: string,
  session: SessionConfig,
  known: { id?: string | undefined; hash?: string | undefined } = {},
): Promise<OpenedModel> {
  const settings = { provider: session.provider, threads: session.threads, spinning: session.spinning };
  const options = sessionOptions(settings);
  const providers = [session.provider];
  const base = { providers, ...(known.id ? { id: known.id } : {}) };
  if (!session.cacheDir) {
    return {
      model: await loadModel({ ...base, modelDir, sessionOptions: options, ...hashOpt(known.hash) }),
      cachedSessions: 0,
    };
  }
  let hash = known.hash;
  try {
    hash ??= await hashModelDir(modelDir);
  } catch {
    // Unreadable folder: let loadModel report it.
    return { model: await loadModel({ ...base, modelDir, sessionOptions: options }), cachedSessions: 0 };
  }
  const id = known.id ?? modelDir.split(/[\\/]/).filter(Boolean).at(-1)!;
  try {
    const prepared = await prepareOptimizedModel(
      modelDir,
      { cacheDir: session.cacheDir, modelHash: hash, provider: session.provider },
      settings,
    );
    const model = await loadModel({
      ...base,
      id,
      hash,
      modelDir: prepared.dir,
      sessionOptions: { ...options, graphOptimizationLevel: 'disabled' },
    });
    return { model: withDir(model, modelDir), cachedSessions: prepared.fromCache ? 3 : 0 };
  } catch (e) {
    if (AppError.is(e, 'ENGINE_PROVIDER_UNAVAILABLE') || AppError.is(e, 'ENGINE_OUT_OF_MEMORY')) throw e;
    return { model: await loadModel({ ...base, id, hash, modelDir, sessionOptions: options }), cachedSessions: 0 };
  }
}

function hashOpt(hash: string | undefined): { hash?: string } {
  return hash ? { hash } : {};
}

/** Reports the user's folder, not the cache copy, as the model's location. */
function withDir(model: DiffusionModel, dir: string): DiffusionModel {
  return {
    id: model.id,
    dir,
    hash: model.hash,
    provider: model.provider,
    memory: model.memory,
    generate: (req, opts) => model.generate(req, opts),
    dispose: () => model.dispose(),
  };
}
