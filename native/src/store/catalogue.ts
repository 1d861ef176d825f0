/**
 * The catalogue of real ONNX Stable Diffusion exports Atelier offers to download, each by its
 * Hugging Face repository and a pinned commit. The file list comes from the hub's tree API at
 * that commit (`/api/models/<repo>/tree/<rev>?recursive=true`), which gives every file's size and
 * hash: large (LFS) files are checked against their sha256, small files against their git blob
 * id (sha1 of "blob <size>\0" + bytes). Files are fetched one by one from
 * `<hub>/<repo>/resolve/<rev>/<path>`, resuming a partial file with a Range request; the folder is
 * staged beside the models folder and moved into place only when complete and valid.
 *
 * Sources (looked up when the entries were written; the commit pins what is downloaded):
 * - https://huggingface.co/onnxruntime/sd-turbo/tree/6d0b4c16d1606606694b58681a91b0edf1415268
 * - https://huggingface.co/julienkay/stable-diffusion-v1-5/tree/4aef5267872feaf914ca5d50b82f6ab1a01d0a09
 * SDXL-Turbo is not listed: the engine runs SD 1.x/2.x pipelines (one text encoder, no SDXL
 * time ids), so an SDXL export would not load.
 */
import { createHash } from 'node:crypto';
import { mkdir, rename, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { AppError } from '@atelier/common';
import { fetchFile, type DownloadProgress } from './download.ts';
import type { ModelEntry, ModelStore } from './store.ts';

export interface CatalogueEntry {
  /** The id the model is installed under. */
  id: string;
  name: string;
  repo: string;
  /** A full commit id: what is downloaded never changes under the same entry. */
  revision: string;
  /** Unit: bytes, about (the files the engine needs, as the hub lists them). */
  sizeBytes: number;
  licence: { name: string; url: string };
  /** What it needs to run well, in words. */
  hardware: string;
  description: string;
  /** Suggested settings: a Turbo model wants 1–4 steps and no guidance. */
  defaults: { steps: number; guidance: number; scheduler: 'euler_a' | 'lcm' | 'euler' | 'ddim'; size: number };
}

/**
 * Paths of a repository that make up the engine's model folder (vae_encoder for image to image
 * and inpainting); the rest (safety checker, README, …) is skipped.
 */
const NEEDED = /^(model_index\.json|scheduler\/|text_encoder\/|tokenizer\/|unet\/|vae_decoder\/|vae_encoder\/)/;

export const CATALOGUE: readonly CatalogueEntry[] = [
  {
    id: 'sd-turbo',
    name: 'SD-Turbo (ONNX Runtime, fp16)',
    repo: 'onnxruntime/sd-turbo',
    revision: '6d0b4c16d1606606694b58681a91b0edf1415268',
    sizeBytes: 2_510_000_000,
    licence: {
      name: 'Stability AI Non-Commercial Research Community License',
      url: 'https://huggingface.co/stabilityai/sd-turbo/blob/main/LICENSE',
    },
    hardware:
      'A GPU with 4 GB or more (DirectML on Windows, CUDA on Linux): the graphs are fp16, optimised by Olive for GPUs. On a CPU expect tens of seconds per 512×512 image, if its fp16 graphs load at all.',
    description: 'Stable Diffusion 2.1 distilled for 1–4 steps; 512×512. Non-commercial use only.',
    defaults: { steps: 1, guidance: 0, scheduler: 'euler_a', size: 512 },
  },
  {
    id: 'stable-diffusion-v1-5',
    name: 'Stable Diffusion 1.5 (ONNX, fp32)',
    repo: 'julienkay/stable-diffusion-v1-5',
    revision: '4aef5267872feaf914ca5d50b82f6ab1a01d0a09',
    sizeBytes: 4_130_000_000,
    licence: {
      name: 'CreativeML Open RAIL-M',
      url: 'https://huggingface.co/spaces/CompVis/stable-diffusion-license',
    },
    hardware:
      'About 8 GB of free memory; a GPU with 6 GB or more recommended. On a CPU, a minute or more per 512×512 image at 25 steps.',
    description: 'The classic Stable Diffusion 1.5 in the ONNX layout diffusers exports; 512×512, 20–50 steps.',
    defaults: { steps: 25, guidance: 7.5, scheduler: 'euler_a', size: 512 },
  },
];

export const HUGGING_FACE = 'https://huggingface.co';

export function catalogueEntry(id: string): CatalogueEntry {
  const e = CATALOGUE.find((x) => x.id === id);
  if (!e)
    throw new AppError('NOT_FOUND', `No catalogue model "${id}"`, {
      userMessage: `There is no catalogue model "${id}". Choose one of: ${CATALOGUE.map((x) => x.id).join(', ')}.`,
    });
  return e;
}

/** One file of a model at its pinned revision, with what to check it against. */
export interface RemoteFile {
  path: string;
  size: number;
  /** For LFS files. */
  sha256: string | null;
  /** Git blob id (sha1), for small files stored in git itself. */
  gitOid: string | null;
}

interface TreeItem {
  type: string;
  path: string;
  size?: number;
  oid?: string;
  lfs?: { oid?: string; size?: number } | null;
}

const hubFailed = (what: string, detail: string) =>
  new AppError('DOWNLOAD_FAILED', `${what}: ${detail}`, {
    userMessage: `Could not reach Hugging Face to ${what} (${detail}). Check the connection and try again; finished files are kept.`,
  });

/** The files of `entry` the engine needs, with sizes and hashes, from the hub's tree API at the pinned revision. */
export async function listFiles(
  entry: CatalogueEntry,
  hub = HUGGING_FACE,
  signal?: AbortSignal,
): Promise<RemoteFile[]> {
  const url = `${hub}/api/models/${entry.repo}/tree/${entry.revision}?recursive=true`;
  let res: Response;
  try {
    res = await fetch(url, { signal: signal ?? null });
  } catch (e) {
    if (signal?.aborted) throw new AppError('CANCELED', 'download canceled');
    throw hubFailed(`list the files of ${entry.repo}`, (e as Error).message);
  }
  if (!res.ok) throw hubFailed(`list the files of ${entry.repo}`, `HTTP ${res.status}`);
  const items = (await res.json()) as TreeItem[];
  // A path the hub lists is joined under the staging folder: refuse anything that could leave it.
  const unsafe = items.find(
    (i) =>
      i.type === 'file' && (i.path.split('/').some((s) => s === '' || s === '.' || s === '..') || /[\\:]/.test(i.path)),
  );
  if (unsafe)
    throw new AppError('DOWNLOAD_FAILED', `${entry.repo}: refusing the path "${unsafe.path}"`, {
      userMessage: `The model's file list names a path Atelier will not write ("${unsafe.path}"). Nothing was downloaded.`,
    });
  const files = items
    .filter((i) => i.type === 'file' && NEEDED.test(i.path))
    .map((i) => ({
      path: i.path,
      size: i.lfs?.size ?? i.size ?? 0,
      sha256: i.lfs?.oid && /^[0-9a-f]{64}$/i.test(i.lfs.oid) ? i.lfs.oid.toLowerCase() : null,
      gitOid: !i.lfs && i.oid && /^[0-9a-f]{40}$/i.test(i.oid) ? i.oid.toLowerCase() : null,
    }));
  for (const f of files)
    if (!f.sha256 && !f.gitOid)
      throw new AppError('DOWNLOAD_FAILED', `${entry.repo}: ${f.path} has no hash to check it against`);
  if (!files.some((f) => f.path === 'unet/model.onnx'))
    throw new AppError('ENGINE_MODEL_INVALID', `${entry.repo}@${entry.revision} has no unet/model.onnx`);
  return files;
}

const gitBlobOid = (bytes: Uint8Array) =>
  createHash('sha1').update(`blob ${bytes.length}\0`).update(bytes).digest('hex');

export interface CatalogueDownloadOptions {
  /** The hub's base URL; default https://huggingface.co (tests serve the same paths locally). */
  hub?: string;
  signal?: AbortSignal;
  onProgress?: (p: DownloadProgress) => void;
  retries?: number;
}

/**
 * Downloads a catalogue model into the store, file by file, resuming what an earlier attempt left
 * (finished files are kept; a partial file continues from its last byte). Returns the installed entry.
 */
export async function downloadCatalogueModel(
  store: ModelStore,
  id: string,
  opts: CatalogueDownloadOptions = {},
): Promise<ModelEntry> {
  const entry = catalogueEntry(id);
  const hub = (opts.hub ?? HUGGING_FACE).replace(/\/$/, '');
  const installed = (await store.list()).find((m) => m.id === entry.id);
  if (installed)
    throw new AppError('CONFLICT', `${entry.id} is already installed`, {
      userMessage: `"${entry.id}" is already installed.`,
    });
  const files = await listFiles(entry, hub, opts.signal);
  const staging = store.stagingDir(`catalogue-${entry.id}-${entry.revision.slice(0, 12)}`);
  const totalBytes = files.reduce((n, f) => n + f.size, 0);
  let doneBytes = 0;
  for (const [i, f] of files.entries()) {
    if (opts.signal?.aborted) throw new AppError('CANCELED', 'download canceled');
    const dest = path.join(staging, ...f.path.split('/'));
    const url = `${hub}/${entry.repo}/resolve/${entry.revision}/${f.path.split('/').map(encodeURIComponent).join('/')}`;
    const progress = (fileBytes: number) =>
      opts.onProgress?.({
        file: f.path,
        fileIndex: i,
        fileCount: files.length,
        fileBytes,
        fileTotal: f.size,
        receivedBytes: doneBytes + fileBytes,
        totalBytes,
      });
    const done = await stat(dest).then(
      (s) => s.size === f.size,
      () => false,
    );
    if (!done) {
      if (f.sha256)
        await fetchFile({
          url,
          dest,
          sha256: f.sha256,
          size: f.size,
          signal: opts.signal,
          retries: opts.retries,
          onBytes: progress,
        });
      else await fetchSmallFile(url, dest, f, opts.signal);
    }
    progress(f.size);
    doneBytes += f.size;
  }
  return store.adoptFolder(staging, { id: entry.id, source: `${hub}/${entry.repo}@${entry.revision}` });
}

/** A small git-stored file (configs, tokenizer): fetched whole and checked against its git blob id. */
async function fetchSmallFile(url: string, dest: string, f: RemoteFile, signal?: AbortSignal): Promise<void> {
  let res: Response;
  try {
    res = await fetch(url, { signal: signal ?? null });
  } catch (e) {
    if (signal?.aborted) throw new AppError('CANCELED', 'download canceled');
    throw hubFailed(`download ${f.path}`, (e as Error).message);
  }
  if (!res.ok) throw hubFailed(`download ${f.path}`, `HTTP ${res.status}`);
  const bytes = new Uint8Array(await res.arrayBuffer());
  if (bytes.length !== f.size || gitBlobOid(bytes) !== f.gitOid)
    throw new AppError('CHECKSUM_MISMATCH', `${f.path}: content does not match its git id ${f.gitOid}`, {
      userMessage: `${f.path} did not match the file at the pinned revision and was not kept. Try again.`,
    });
  await mkdir(path.dirname(dest), { recursive: true });
  await writeFile(`${dest}.part`, bytes);
  await rename(`${dest}.part`, dest);
}
