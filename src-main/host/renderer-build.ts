/** Builds the renderer with Vite when dist/ is missing or older than its sources. */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';

function newestMtime(p: string): number {
  if (!existsSync(p)) return 0;
  const st = statSync(p);
  if (!st.isDirectory()) return st.mtimeMs;
  let newest = 0;
  for (const name of readdirSync(p))
    if (name !== 'node_modules' && name !== 'dist') newest = Math.max(newest, newestMtime(path.join(p, name)));
  return newest;
}

export function rendererIsStale(repo: string): boolean {
  const dir = path.join(repo, 'src-renderer');
  const built = path.join(dir, 'dist/index.html');
  if (!existsSync(built)) return true;
  const sources = Math.max(
    newestMtime(path.join(dir, 'src')),
    newestMtime(path.join(dir, 'index.html')),
    newestMtime(path.join(dir, 'public')),
    newestMtime(path.join(dir, 'vite.config.ts')),
    newestMtime(path.join(repo, 'common/src')),
  );
  return sources > statSync(built).mtimeMs;
}

/** Returns the dist folder, or null when there is no renderer in this checkout. */
export function ensureRendererBuilt(repo: string, log: (line: string) => void): string | null {
  const dir = path.join(repo, 'src-renderer');
  if (!existsSync(path.join(dir, 'index.html'))) return null;
  if (rendererIsStale(repo)) {
    log('building the renderer (vite build)…');
    const vite = path.join(repo, 'node_modules/.bin/vite');
    const r = spawnSync(vite, ['build', '--config', path.join(dir, 'vite.config.ts'), '--logLevel', 'warn'], {
      cwd: repo,
      stdio: ['ignore', 2, 2],
    });
    if (r.status !== 0) throw new Error(`vite build failed (exit ${r.status})`);
  }
  return path.join(dir, 'dist');
}
