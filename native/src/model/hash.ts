import { createHash } from 'node:crypto';
import { open, readdir } from 'node:fs/promises';
import path from 'node:path';

/** Every regular file under `dir` (relative, '/'-separated, sorted), skipping dot-files. */
export async function listModelFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  async function walk(rel: string): Promise<void> {
    const entries = await readdir(path.join(dir, rel), { withFileTypes: true });
    for (const e of entries) {
      if (e.name.startsWith('.')) continue;
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) await walk(r);
      else if (e.isFile()) out.push(r);
    }
  }
  await walk('');
  return out.sort();
}

/**
 * sha256 (hex) over a model folder: for each file in sorted order, its relative path, a NUL, its
 * byte length as decimal, a NUL, then its bytes. Renaming, adding or changing any file changes it.
 */
export async function hashModelDir(dir: string): Promise<string> {
  const h = createHash('sha256');
  const buf = Buffer.alloc(4 << 20);
  for (const rel of await listModelFiles(dir)) {
    const fh = await open(path.join(dir, rel), 'r');
    try {
      const { size } = await fh.stat();
      h.update(`${rel}\0${size}\0`);
      for (;;) {
        const { bytesRead } = await fh.read(buf, 0, buf.length, null);
        if (bytesRead === 0) break;
        h.update(buf.subarray(0, bytesRead));
      }
    } finally {
      await fh.close();
    }
  }
  return h.digest('hex');
}
