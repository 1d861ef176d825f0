// Each fixture in lint-fixtures/ is linted as if it lived at its `lint-as` path; the import
// boundary rule must reject every violating one with the expected message and pass the good ones.
import { ESLint } from 'eslint';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const repo = path.resolve(import.meta.dirname, '..');
const dir = path.join(repo, 'test/lint-fixtures');
const eslint = new ESLint({ cwd: repo, errorOnUnmatchedPattern: false });

const fixtures = readdirSync(dir)
  .filter((f) => f.endsWith('.ts'))
  .map((file) => {
    const text = readFileSync(path.join(dir, file), 'utf8');
    const lintAs = /^\/\/ lint-as: (.+)$/m.exec(text)?.[1];
    const expected = /^\/\/ expect: (.+)$/m.exec(text)?.[1];
    if (!lintAs || !expected) throw new Error(`${file} lacks its lint-as or expect header`);
    return { file, text, lintAs, expected };
  });

describe('import boundaries (ARCHITECTURE §1)', () => {
  it('has fixtures for every rule', () => {
    expect(fixtures.filter((f) => f.expected !== 'ok').length).toBeGreaterThanOrEqual(12);
  });

  it.each(fixtures)('$file', async ({ text, lintAs, expected }) => {
    const [result] = await eslint.lintText(text, { filePath: path.join(repo, lintAs) });
    const boundary = result!.messages.filter((m) => m.ruleId === 'atelier/boundaries');
    if (expected === 'ok') {
      expect(boundary).toEqual([]);
    } else {
      expect(boundary.map((m) => m.message).join('\n')).toContain(expected);
      expect(result!.errorCount).toBeGreaterThan(0);
    }
  });

  it('the real tree passes the boundary rule', async () => {
    const results = await eslint.lintFiles(['common', 'native', 'cloud', 'src-main', 'src-renderer']);
    const violations = results.flatMap((r) =>
      r.messages
        .filter((m) => m.ruleId === 'atelier/boundaries')
        .map((m) => `${path.relative(repo, r.filePath)}:${m.line} ${m.message}`),
    );
    expect(violations).toEqual([]);
  });
});
