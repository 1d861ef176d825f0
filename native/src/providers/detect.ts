import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { listSupportedBackends } from 'onnxruntime-node';
import type { ProviderEnvironment } from './config.ts';
import { probeProvider } from './probe.ts';

/** Execution providers Atelier knows, by their onnxruntime names. */
export const PROVIDER_NAMES = ['cuda', 'dml', 'coreml', 'cpu'] as const;
export type ProviderName = (typeof PROVIDER_NAMES)[number];

export const PROVIDER_LABELS: Record<ProviderName, string> = {
  cuda: 'CUDA',
  dml: 'DirectML',
  coreml: 'CoreML',
  cpu: 'CPU',
};

export interface ProviderReport {
  /** The onnxruntime execution-provider name, as passed in `executionProviders`. */
  name: ProviderName;
  label: string;
  usable: boolean;
  /** Runs on a GPU / accelerator (the job router prefers local only when one is usable). */
  gpu: boolean;
  /** Why it is not usable and what to do; for a usable provider, what was found. */
  reason: string;
}

export interface DetectOptions {
  platform?: NodeJS.Platform;
  environment?: ProviderEnvironment;
  /** Create a one-node session on each provider that passes the static checks (default true). */
  probe?: boolean;
  /** Overrides for tests: the backend list and where onnxruntime-node keeps its binaries. */
  backends?: { name: string; bundled: boolean }[];
  ortBinDir?: string;
  /** Returns whether a shared library can be found by the dynamic loader. */
  findLibrary?: (name: RegExp, env: ProviderEnvironment) => boolean;
  /** Returns whether an NVIDIA GPU device is present. */
  hasNvidiaGpu?: () => boolean;
}

const require = createRequire(import.meta.url);

/** The folder holding onnxruntime-node's native binding and provider libraries for this platform. */
export function onnxruntimeBinDir(platform: NodeJS.Platform = process.platform, arch: string = process.arch): string {
  const pkg = path.dirname(require.resolve('onnxruntime-node/package.json'));
  return path.join(pkg, 'bin', 'napi-v6', platform, arch);
}

/** The onnxruntime-node version: part of the optimised-model cache key. */
export function onnxruntimeVersion(): string {
  return (require('onnxruntime-node/package.json') as { version: string }).version;
}

let ldconfigCache: string | undefined;
function ldconfigListing(): string {
  if (ldconfigCache !== undefined) return ldconfigCache;
  for (const bin of ['/sbin/ldconfig', '/usr/sbin/ldconfig', 'ldconfig']) {
    try {
      ldconfigCache = execFileSync(bin, ['-p'], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
        timeout: 5000,
      });
      return ldconfigCache;
    } catch {
      // try the next location
    }
  }
  ldconfigCache = '';
  return ldconfigCache;
}

/** Whether the dynamic loader can find a library: the loader cache, LD_LIBRARY_PATH, the usual CUDA folders. */
export function findSharedLibrary(name: RegExp, env: ProviderEnvironment): boolean {
  const listing = ldconfigListing();
  for (const line of listing.split('\n')) {
    const file = line.trim().split(' ')[0];
    if (file && name.test(file)) return true;
  }
  const dirs = [...env.libraryPath, '/usr/local/cuda/lib64', '/usr/lib/x86_64-linux-gnu', '/usr/lib64'];
  for (const dir of dirs) {
    try {
      if (readdirSync(dir).some((f) => name.test(f))) return true;
    } catch {
      // missing folder
    }
  }
  return false;
}

export function nvidiaGpuPresent(): boolean {
  try {
    if (readdirSync('/proc/driver/nvidia/gpus').length > 0) return true;
  } catch {
    // no driver procfs
  }
  if (existsSync('/dev/nvidia0')) return true;
  try {
    const out = execFileSync('nvidia-smi', ['-L'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
      timeout: 5000,
    });
    return /GPU \d+/.test(out);
  } catch {
    return false;
  }
}

const CUDA_INSTALL_HINT =
  'add it with `node node_modules/onnxruntime-node/script/install --onnxruntime-node-install-cuda=v12` (downloads the CUDA provider for onnxruntime-node)';

async function detectCuda(o: Required<DetectOptions>): Promise<ProviderReport> {
  const base = { name: 'cuda', label: 'CUDA', gpu: true } as const;
  const no = (reason: string): ProviderReport => ({ ...base, usable: false, reason });
  if (o.platform !== 'linux') return no('CUDA is used on Linux only; on this system use the other GPU provider listed');
  if (!o.backends.some((b) => b.name === 'cuda'))
    return no('this onnxruntime-node build has no CUDA support on this architecture');
  const providerLib = path.join(o.ortBinDir, 'libonnxruntime_providers_cuda.so');
  if (!existsSync(providerLib)) return no(`CUDA provider not installed: ${CUDA_INSTALL_HINT}`);
  if (!o.hasNvidiaGpu()) return no('no NVIDIA GPU found (no /proc/driver/nvidia/gpus, /dev/nvidia0 or nvidia-smi)');
  if (o.environment.cudaVisibleDevices !== undefined && o.environment.cudaVisibleDevices.trim() === '')
    return no('CUDA_VISIBLE_DEVICES is empty, which hides every GPU: unset it');
  const libs: [RegExp, string][] = [
    [
      /^libcudart\.so\.12/,
      'CUDA 12 runtime (libcudart.so.12): install the CUDA 12 toolkit or the nvidia-cuda-runtime package',
    ],
    [/^libcublas\.so\.12/, 'cuBLAS 12 (libcublas.so.12): install the CUDA 12 toolkit'],
    [/^libcudnn\.so\.9/, 'cuDNN 9 (libcudnn.so.9): install cuDNN 9 for CUDA 12'],
  ];
  for (const [re, what] of libs)
    if (!o.findLibrary(re, o.environment)) return no(`missing ${what}, or add its folder to LD_LIBRARY_PATH`);
  if (o.probe) {
    const failure = await probeProvider('cuda');
    if (failure) return no(`the CUDA provider failed to start (${failure}); check the driver with nvidia-smi`);
  }
  return { ...base, usable: true, reason: 'NVIDIA GPU with CUDA 12 and cuDNN 9 found' };
}

async function detectBundledGpu(
  name: 'dml' | 'coreml',
  platform: NodeJS.Platform,
  o: Required<DetectOptions>,
): Promise<ProviderReport> {
  const base = { name, label: PROVIDER_LABELS[name], gpu: true } as const;
  const no = (reason: string): ProviderReport => ({ ...base, usable: false, reason });
  const os = platform === 'win32' ? 'Windows' : 'macOS';
  if (o.platform !== platform) return no(`${PROVIDER_LABELS[name]} is available on ${os} only`);
  if (!o.backends.some((b) => b.name === name))
    return no(
      `this onnxruntime-node build has no ${PROVIDER_LABELS[name]} support; reinstall dependencies with npm ci`,
    );
  if (o.probe) {
    const failure = await probeProvider(name);
    if (failure)
      return no(
        `${PROVIDER_LABELS[name]} failed to start (${failure}); ` +
          (name === 'dml' ? 'update the GPU driver and Windows' : 'update macOS'),
      );
  }
  return { ...base, usable: true, reason: `${PROVIDER_LABELS[name]} is bundled with onnxruntime-node` };
}

/**
 * What can run inference here, best first: every known provider with whether it is usable and,
 * when it is not, why and what to do. CPU is always last and, with a working install, usable.
 */
export async function detectProviders(opts: DetectOptions = {}): Promise<ProviderReport[]> {
  const platform = opts.platform ?? process.platform;
  const o: Required<DetectOptions> = {
    platform,
    environment: opts.environment ?? { libraryPath: [], cudaVisibleDevices: undefined, threads: undefined },
    probe: opts.probe ?? true,
    backends: opts.backends ?? listSupportedBackends(),
    ortBinDir: opts.ortBinDir ?? onnxruntimeBinDir(platform),
    findLibrary: opts.findLibrary ?? findSharedLibrary,
    hasNvidiaGpu: opts.hasNvidiaGpu ?? nvidiaGpuPresent,
  };
  const reports: ProviderReport[] = [
    await detectCuda(o),
    await detectBundledGpu('dml', 'win32', o),
    await detectBundledGpu('coreml', 'darwin', o),
  ];
  let cpu: ProviderReport = {
    name: 'cpu',
    label: 'CPU',
    gpu: false,
    usable: true,
    reason: 'bundled with onnxruntime-node',
  };
  if (!o.backends.some((b) => b.name === 'cpu'))
    cpu = {
      ...cpu,
      usable: false,
      reason: 'onnxruntime-node has no CPU backend here: reinstall dependencies with npm ci',
    };
  else if (o.probe) {
    const failure = await probeProvider('cpu');
    if (failure)
      cpu = { ...cpu, usable: false, reason: `onnxruntime failed to start (${failure}): reinstall with npm ci` };
  }
  reports.push(cpu);
  return reports;
}

/** The first usable provider in order of preference (GPU first), or undefined when nothing runs. */
export function bestProvider(reports: readonly ProviderReport[]): ProviderReport | undefined {
  return reports.find((r) => r.usable && r.gpu) ?? reports.find((r) => r.usable);
}

export function isProviderName(value: string): value is ProviderName {
  return (PROVIDER_NAMES as readonly string[]).includes(value);
}
