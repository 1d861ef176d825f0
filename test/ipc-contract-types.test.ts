// The IPC contract is complete by construction: removing a handler or an output schema must be a
// compile error. These run the real TypeScript compiler on fixtures that do exactly that.
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const repo = path.resolve(import.meta.dirname, '..');
const tsc = path.join(repo, 'node_modules/typescript/bin/tsc');

async function compile(fixture: string): Promise<{ code: number; output: string }> {
  const args = [
    tsc,
    '--noEmit',
    '--strict',
    '--module',
    'nodenext',
    '--moduleResolution',
    'nodenext',
    '--target',
    'es2024',
    '--allowImportingTsExtensions',
    '--skipLibCheck',
    '--ignoreConfig',
    path.join(repo, 'test/type-fixtures', fixture),
  ];
  try {
    const { stdout } = await promisify(execFile)(process.execPath, args, { cwd: repo });
    return { code: 0, output: stdout };
  } catch (e) {
    const err = e as { code: number; stdout: string };
    return { code: err.code, output: err.stdout };
  }
}

describe('IPC contract completeness', () => {
  it('a complete handler set compiles', async () => {
    const r = await compile('complete-handlers.ts');
    expect(r.output).toBe('');
    expect(r.code).toBe(0);
  });

  it('a handler set missing one channel does not compile', async () => {
    const r = await compile('missing-handler.ts');
    expect(r.code).not.toBe(0);
    expect(r.output).toMatch(/jobs:cancel/);
  });

  it('a channel without an output schema does not compile', async () => {
    const r = await compile('missing-output.ts');
    expect(r.code).not.toBe(0);
    expect(r.output).toMatch(/output/);
  });
});
