import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { REQUIRED_FILES } from '../model/model-folder.ts';

/** The files every ONNX Stable Diffusion folder (Optimum / diffusers export) has: the engine's own list. */
export const REQUIRED_MODEL_FILES = REQUIRED_FILES;

/**
 * A cheap structural check of a model folder, run before copying or linking it: every required
 * file exists and the JSON files parse. The engine's loadModel does the deep check (graph inputs,
 * shapes, channel counts); this one answers in milliseconds for a multi-gigabyte model.
 * Returns the problems found, empty when the layout is right.
 */
export async function checkModelLayout(dir: string): Promise<string[]> {
  const problems: string[] = [];
  for (const rel of REQUIRED_MODEL_FILES) {
    const file = path.join(dir, rel);
    try {
      const s = await stat(file);
      if (!s.isFile()) problems.push(`${rel} is not a file`);
      else if (s.size === 0) problems.push(`${rel} is empty`);
      else if (rel.endsWith('.json')) {
        try {
          JSON.parse(await readFile(file, 'utf8'));
        } catch {
          problems.push(`${rel} is not valid JSON`);
        }
      }
    } catch {
      problems.push(`${rel} is missing`);
    }
  }
  return problems;
}

/** A display name: model_index.json's `_name_or_path` when it names something, else the folder name. */
export async function modelDisplayName(dir: string): Promise<string> {
  try {
    const index = JSON.parse(await readFile(path.join(dir, 'model_index.json'), 'utf8')) as Record<string, unknown>;
    const n = index._name_or_path ?? index.name;
    if (typeof n === 'string' && n.trim() && !path.isAbsolute(n)) return n.trim();
  } catch {
    // fall through to the folder name
  }
  return path.basename(dir);
}

/** Turns a folder or manifest name into a model id (common's ModelId: lower-case slug). */
export function toModelId(name: string): string {
  const id = name
    .toLowerCase()
    .replace(/[^a-z0-9._-]+/g, '-')
    .replace(/^[^a-z0-9]+/, '')
    .replace(/-+$/, '')
    .slice(0, 100);
  return id || 'model';
}
