// npm's first run is quiet and honest: no "Unknown project config" warnings from .npmrc, engines
// that Node 20 (the README's minimum, which runs npm) satisfies, and every install script reviewed.
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const repo = path.resolve(import.meta.dirname, '..');
const pkg = JSON.parse(readFileSync(path.join(repo, 'package.json'), 'utf8')) as {
  engines: { node: string };
  allowScripts: Record<string, boolean>;
};
// npm itself runs on the system Node (npm scripts then use the pinned Node 24): ask the npm on PATH.
const npm = (args: string[]) =>
  spawnSync('npm', args, { cwd: repo, encoding: 'utf8', env: { ...process.env, npm_config_loglevel: 'warn' } });

describe('npm configuration', () => {
  it('sets only keys npm knows in .npmrc (no "Unknown project config" on every command)', () => {
    const r = npm(['config', 'get', 'fund']);
    expect(r.status).toBe(0);
    expect(r.stderr).not.toMatch(/Unknown project config/);
  });

  it('declares engines that the Node running npm satisfies, so atelier itself raises no EBADENGINE', () => {
    // A plain lower bound (what npm checks against the Node it runs on) at or below the README's 20.
    const m = /^>=\s*(\d+)(?:\.\d+){0,2}$/.exec(pkg.engines.node);
    expect(m, pkg.engines.node).not.toBeNull();
    expect(Number(m![1])).toBeLessThanOrEqual(20);
    const system = execFileSync('node', ['--version'], { encoding: 'utf8' }).trim();
    expect(Number(/^v(\d+)/.exec(system)![1])).toBeGreaterThanOrEqual(Number(m![1]));
  });

  it('keeps Electron’s and onnxruntime’s downloads out of the install, and reviews every other install script', () => {
    expect(pkg.allowScripts.electron).toBe(false);
    expect(pkg.allowScripts['onnxruntime-node']).toBe(false);
    const lock = JSON.parse(readFileSync(path.join(repo, 'package-lock.json'), 'utf8')) as {
      packages: Record<string, { hasInstallScript?: boolean }>;
    };
    const withScripts = Object.entries(lock.packages)
      .filter(([, p]) => p.hasInstallScript)
      .map(([k]) => k.replace(/^.*node_modules\//, ''));
    for (const name of withScripts) expect(pkg.allowScripts, name).toHaveProperty([name]);
    const r = npm(['install-scripts', 'ls']);
    expect(r.stdout + r.stderr).toMatch(/No packages with unreviewed install scripts/);
  });
});
