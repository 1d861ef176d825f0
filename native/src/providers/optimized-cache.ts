import { randomBytes } from 'node:crypto';
import { copyFile, mkdir, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { InferenceSession } from 'onnxruntime-node';
import { onnxruntimeVersion } from './detect.ts';
import { sessionOptions, type SessionSettings } from './session.ts';

/** The components the engine opens sessions for, as folders of the model layout. */
export const SESSION_COMPONENTS = ['text_encoder', 'unet', 'vae_decoder'] as const;
/** Optimised too when the model has it (image to image, inpainting). */
export const OPTIONAL_COMPONENTS = ['vae_encoder'] as const;

const COMPLETE_MARKER = '.atelier-optimized';
/** Non-graph files larger than this outside the three components (e.g. a vae_encoder's weights) are not needed to load. */
const SMALL_FILE = 16 * 1024 * 1024;

export interface OptimizedModelKey {
  /** Root of the optimised-graph cache, e.g. ~/.cache/atelier. */
  cacheDir: string;
  /** sha256 of the model folder: a changed model never reuses another's optimised graphs. */
  modelHash: string;
  provider: string;
}

/**
 * Where a model's optimised copy lives. Keyed by onnxruntime version, provider and model hash,
 * because an 'all'-level optimised graph holds provider- and CPU-specific kernels (onnxruntime
 * says so when it writes one) that are only valid for the runtime that wrote it.
 */
export function optimizedModelDir(k: OptimizedModelKey): string {
  return path.join(k.cacheDir, `ort-${onnxruntimeVersion()}`, k.provider, k.modelHash.slice(0, 32));
}

export interface PreparedModel {
  /** A folder in the standard layout whose three graphs are already optimised. */
  dir: string;
  /** True when it was already in the cache (the fast path). */
  fromCache: boolean;
}

/**
 * Returns the optimised copy of a model folder, building it on a cache miss: each component is
 * optimised once at level 'all' and written with onnxruntime's `optimizedModelFilePath`, with its
 * weights in a `model.onnx_data` file of its own (an optimised graph's weights can differ from
 * the original's after fusions, and an external file has no 2 GB protobuf limit). The small files
 * (configs, tokenizer, scheduler) are copied beside them. Load the result with optimisation
 * disabled: that skips the work that made the first load slow.
 *
 * The copy is built in a temporary folder and renamed into place with a marker, so an
 * interrupted build is never mistaken for a complete one. It costs disk equal to the model's
 * weights per provider; deleting the cache folder is always safe.
 */
export async function prepareOptimizedModel(
  modelDir: string,
  key: OptimizedModelKey,
  settings: SessionSettings,
): Promise<PreparedModel> {
  const dir = optimizedModelDir(key);
  const optional: string[] = [];
  for (const c of OPTIONAL_COMPONENTS) if (await exists(path.join(modelDir, c, 'model.onnx'))) optional.push(c);
  // A copy made before the engine used the encoder may lack it: rebuild rather than lose img2img.
  const complete =
    (await exists(path.join(dir, COMPLETE_MARKER))) &&
    (await Promise.all(optional.map((c) => exists(path.join(dir, c, 'model.onnx'))))).every(Boolean);
  if (complete) return { dir, fromCache: true };
  await rm(dir, { recursive: true, force: true });
  const tmp = `${dir}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    await copySmallFiles(modelDir, tmp, '');
    for (const component of [...SESSION_COMPONENTS, ...optional]) {
      const out = path.join(tmp, component, 'model.onnx');
      await mkdir(path.dirname(out), { recursive: true });
      const base = sessionOptions(settings);
      const session = await InferenceSession.create(path.join(modelDir, component, 'model.onnx'), {
        ...base,
        optimizedModelFilePath: out,
        // Errors only: onnxruntime warns that an 'all'-level graph is hardware specific, which
        // is why the cache key holds the provider and the runtime version.
        logSeverityLevel: 3,
        extra: {
          ...base.extra,
          session: {
            ...(base.extra?.session as Record<string, string> | undefined),
            optimized_model_external_initializers_file_name: 'model.onnx_data',
            optimized_model_external_initializers_min_size_in_bytes: '1024',
          },
        },
      });
      await session.release();
    }
    await writeFile(path.join(tmp, COMPLETE_MARKER), `${new Date().toISOString()}\n`);
    try {
      await rename(tmp, dir);
    } catch (e) {
      // Another process finished the same copy first: use theirs.
      if (!(await exists(path.join(dir, COMPLETE_MARKER)))) throw e;
    }
    return { dir, fromCache: false };
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

async function copySmallFiles(src: string, dest: string, rel: string): Promise<void> {
  await mkdir(path.join(dest, rel), { recursive: true });
  const top = rel.split('/')[0] ?? '';
  const inComponent = [...SESSION_COMPONENTS, ...OPTIONAL_COMPONENTS].includes(top as never);
  for (const e of await readdir(path.join(src, rel), { withFileTypes: true })) {
    if (e.name.startsWith('.')) continue;
    const r = rel ? `${rel}/${e.name}` : e.name;
    const s = await stat(path.join(src, r));
    if (s.isDirectory()) await copySmallFiles(src, dest, r);
    // A component folder keeps only its configs: its graph and weights come from the optimiser.
    else if (inComponent ? e.name.endsWith('.json') : s.size <= SMALL_FILE)
      await copyFile(path.join(src, r), path.join(dest, r));
  }
}

async function exists(p: string): Promise<boolean> {
  return stat(p).then(
    () => true,
    () => false,
  );
}
