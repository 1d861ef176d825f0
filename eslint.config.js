// Lint rules for the whole repository. The import boundaries below are ARCHITECTURE §1 made
// mechanical: the folder a file lives in decides what it may import. Do not relax these rules;
// change the architecture document first. test/lint-boundaries.test.ts proves each one bites.
import js from '@eslint/js';
import globals from 'globals';
import { builtinModules } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import tseslint from 'typescript-eslint';

const root = path.dirname(fileURLToPath(import.meta.url));
const builtins = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));

/** Which zone a repository-relative path belongs to. */
function zoneOf(rel) {
  const p = rel.split(path.sep).join('/');
  if (p.startsWith('common/')) return 'common';
  if (p.startsWith('native/')) return 'native';
  if (p.startsWith('cloud/')) return 'cloud';
  if (p.startsWith('src-main/electron/')) return 'electron-main';
  if (p.startsWith('src-main/services/')) return 'services';
  if (p.startsWith('src-main/host/')) return 'host';
  if (p.startsWith('src-main/')) return 'src-main';
  // The renderer's Vite config runs in Node at build time, not in the browser: build tooling, not UI code.
  if (p === 'src-renderer/vite.config.ts') return 'other';
  if (p.startsWith('src-renderer/')) return 'renderer';
  if (p.startsWith('test/')) return 'test';
  if (p.startsWith('bench/')) return 'bench';
  return 'other';
}

const WORKSPACE_ZONES = { '@atelier/common': 'common', '@atelier/engine': 'native', '@atelier/cloud': 'cloud' };
const ELECTRON_MODULES = new Set(['electron', 'electron-updater', '@electron/remote']);
/** UI libraries the renderer may use besides common/. */
const RENDERER_PACKAGES = new Set(['react', 'react-dom', 'zustand', 'zod']);

function packageName(spec) {
  const parts = spec.split('/');
  return spec.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
}

/** What an import specifier points at: a project zone, a builtin, or an external package. */
function targetOf(spec, fromFile) {
  if (spec.startsWith('.') || spec.startsWith('/')) {
    const abs = path.resolve(path.dirname(fromFile), spec);
    const rel = path.relative(root, abs);
    if (rel.startsWith('..')) return { kind: 'outside', name: spec };
    return { kind: 'zone', name: zoneOf(rel) };
  }
  if (builtins.has(spec) || spec.startsWith('node:')) return { kind: 'builtin', name: spec };
  const pkg = packageName(spec);
  if (WORKSPACE_ZONES[pkg]) return { kind: 'zone', name: WORKSPACE_ZONES[pkg] };
  return { kind: 'package', name: pkg };
}

/** Returns a message when `from` may not import `target`, else null. */
function violation(from, target) {
  const { kind, name } = target;
  if (kind === 'outside') return `imports from outside the repository (${name})`;
  if (kind === 'package' && ELECTRON_MODULES.has(name) && from !== 'electron-main')
    return `only src-main/electron/ may import '${name}'`;
  switch (from) {
    case 'common':
      if (kind === 'zone' && name !== 'common') return `common/ imports nothing from the project (found ${name}/)`;
      if (kind === 'builtin') return `common/ is pure TypeScript: no Node module ('${name}')`;
      if (kind === 'package' && name !== 'zod') return `common/ may import only zod (found '${name}')`;
      return null;
    case 'renderer':
      if (kind === 'zone' && name !== 'renderer' && name !== 'common')
        return `src-renderer/ imports only common/ and UI libraries (found ${name}/)`;
      if (kind === 'builtin') return `src-renderer/ runs in the browser: no Node module ('${name}')`;
      if (kind === 'package' && !RENDERER_PACKAGES.has(name))
        return `src-renderer/ may not import '${name}' (UI libraries: ${[...RENDERER_PACKAGES].join(', ')})`;
      return null;
    case 'cloud':
      if (kind === 'zone' && ['services', 'host', 'electron-main', 'src-main', 'renderer'].includes(name))
        return `cloud/ never imports desktop code (found ${name}/)`;
      return null;
    case 'native':
      if (kind === 'zone' && !['native', 'common'].includes(name))
        return `native/ imports only common/ (found ${name}/)`;
      return null;
    case 'services':
    case 'host':
      if (kind === 'zone' && ['cloud', 'renderer', 'electron-main'].includes(name))
        return `src-main/${from}/ may not import ${name}/ (the desktop reaches the cloud over HTTP)`;
      return null;
    case 'electron-main':
      if (kind === 'zone' && ['cloud', 'renderer'].includes(name)) return `src-main/electron/ may not import ${name}/`;
      return null;
    default:
      return null;
  }
}

const boundaries = {
  meta: {
    type: 'problem',
    docs: { description: 'Enforce the folder import boundaries of ARCHITECTURE §1' },
    schema: [],
  },
  create(context) {
    const file = context.filename;
    const from = zoneOf(path.relative(root, file));
    const isTest = /\.test(-d)?\.tsx?$/.test(file);
    function check(node, source) {
      if (!source || typeof source.value !== 'string') return;
      const target = targetOf(source.value, file);
      // Tests may use the test runner on top of what their folder may import.
      if (isTest && target.kind === 'package' && target.name === 'vitest') return;
      const message = violation(from, target);
      if (message) context.report({ node: source, message: `Import boundary: ${message}.` });
    }
    return {
      ImportDeclaration: (n) => check(n, n.source),
      ExportNamedDeclaration: (n) => check(n, n.source),
      ExportAllDeclaration: (n) => check(n, n.source),
      ImportExpression: (n) => check(n, n.source.type === 'Literal' ? n.source : null),
      CallExpression: (n) => {
        if (n.callee.type === 'Identifier' && n.callee.name === 'require' && n.arguments[0]?.type === 'Literal')
          check(n, n.arguments[0]);
      },
      TSImportEqualsDeclaration: (n) => {
        if (n.moduleReference.type === 'TSExternalModuleReference') check(n, n.moduleReference.expression);
      },
    };
  },
};

export default tseslint.config(
  {
    ignores: [
      '**/node_modules/**',
      '**/dist/**',
      '**/cdk.out/**',
      '.atelier/**',
      'test/artifacts/**',
      'test/lint-fixtures/**',
      'test/type-fixtures/**',
      'native/fixtures/models/**',
      'coverage/**',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    plugins: { atelier: { rules: { boundaries } } },
    languageOptions: { globals: { ...globals.node }, ecmaVersion: 2024, sourceType: 'module' },
    rules: {
      'atelier/boundaries': 'error',
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' },
      ],
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-restricted-syntax': [
        'error',
        {
          selector: "MemberExpression[object.name='process'][property.name='env']",
          message: 'Read configuration once in the process config module (config.ts), not here.',
        },
      ],
    },
  },
  {
    // The places allowed to read the environment: each process's config parser and the scripts that launch processes.
    files: [
      '**/config.ts',
      '**/config/*.ts',
      'test/**',
      'bench/**',
      '**/*.test.ts',
      '**/stack/**',
      'src-main/host/start.ts',
      '**/scripts/**',
      'eslint.config.js',
      'vitest.config.ts',
      '**/vite.config.ts',
    ],
    rules: { 'no-restricted-syntax': 'off' },
  },
  {
    files: ['src-renderer/**'],
    languageOptions: { globals: { ...globals.browser } },
  },
);
