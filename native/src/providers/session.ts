import type { InferenceSession } from 'onnxruntime-node';

export interface SessionSettings {
  /** onnxruntime execution provider name ('cpu', 'cuda', 'dml', 'coreml'). */
  provider: string;
  /** Intra-op threads (the CPU provider's compute pool). Default: physical cores, see threads.ts. */
  threads: number;
  /**
   * Let idle intra-op threads busy-wait for the next operator (onnxruntime's default). Off by
   * default here: on a desktop the engine shares the cores with the UI and the rest of the app,
   * and spinning threads then steal the time slices the computing threads need (measured in
   * bench/engine.ts on a 2-core machine under load). Turn it on for a dedicated GPU worker.
   */
  spinning?: boolean | undefined;
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
    extra: { session: { 'intra_op.allow_spinning': s.spinning ? '1' : '0' } },
  };
}
