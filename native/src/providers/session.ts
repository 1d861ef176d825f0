import type { InferenceSession } from 'onnxruntime-node';

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
