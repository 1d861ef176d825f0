/**
 * The environment the provider detection depends on, read in one place (lint allows
 * `process.env` only in config modules). Everything else takes these values as arguments.
 */
export interface ProviderEnvironment {
  /** Extra folders the dynamic loader searches (LD_LIBRARY_PATH on Linux, PATH on Windows). */
  libraryPath: string[];
  /** CUDA_VISIBLE_DEVICES as set, e.g. "" hides every GPU. */
  cudaVisibleDevices: string | undefined;
  /** ATELIER_THREADS: intra-op thread count override. */
  threads: number | undefined;
}

/**
 * Reads the provider environment. `strict` (default) throws on a malformed ATELIER_THREADS so a
 * command can report it; the engine process passes false and ignores it (its caller decides threads).
 */
export function providerEnvironment(env: NodeJS.ProcessEnv = process.env, strict = true): ProviderEnvironment {
  const sep = process.platform === 'win32' ? ';' : ':';
  const raw = process.platform === 'win32' ? env.PATH : env.LD_LIBRARY_PATH;
  const threads = env.ATELIER_THREADS === undefined ? undefined : Number(env.ATELIER_THREADS);
  const bad = threads !== undefined && (!Number.isInteger(threads) || threads < 1 || threads > 1024);
  if (bad && strict)
    throw new Error(`ATELIER_THREADS must be a whole number from 1 to 1024 (got "${env.ATELIER_THREADS}")`);
  return {
    libraryPath: (raw ?? '').split(sep).filter(Boolean),
    cudaVisibleDevices: env.CUDA_VISIBLE_DEVICES,
    threads: bad ? undefined : threads,
  };
}
