import { readFileSync } from 'node:fs';
import os from 'node:os';

/**
 * Physical cores available to this process. Onnxruntime's intra-op pool gains nothing from
 * hyper-threads on the matmul/conv kernels diffusion spends its time in, so physical cores are
 * the default. Linux reads /proc/cpuinfo (unique physical id + core id pairs); elsewhere, and
 * when that file is unreadable, the logical count is used. Never more than the CPUs this
 * process may run on (affinity / container limits via availableParallelism).
 */
export function physicalCores(cpuinfo?: string): number {
  const logical = os.availableParallelism();
  let text = cpuinfo;
  if (text === undefined && process.platform === 'linux') {
    try {
      text = readFileSync('/proc/cpuinfo', 'utf8');
    } catch {
      text = undefined;
    }
  }
  if (text === undefined) return logical;
  const cores = new Set<string>();
  for (const block of text.split(/\n\s*\n/)) {
    const phys = /^physical id\s*:\s*(\d+)/m.exec(block)?.[1];
    const core = /^core id\s*:\s*(\d+)/m.exec(block)?.[1];
    if (phys !== undefined && core !== undefined) cores.add(`${phys}:${core}`);
  }
  // Some VMs and ARM kernels omit the ids: fall back to the logical count.
  if (cores.size === 0) return logical;
  return Math.max(1, Math.min(cores.size, logical));
}

/** The intra-op thread count to use: an explicit choice if given, else the physical cores. */
export function resolveThreads(explicit?: number): number {
  if (explicit !== undefined) {
    if (!Number.isInteger(explicit) || explicit < 1) throw new RangeError(`threads must be a whole number ≥ 1`);
    return explicit;
  }
  return physicalCores();
}
