import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { formatBytes, ProgressBar } from './output.ts';

function capture(isTTY: boolean) {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      chunks.push(String(chunk));
      cb();
    },
  }) as Writable & { isTTY?: boolean; columns?: number };
  stream.isTTY = isTTY;
  stream.columns = 80;
  return { stream, text: () => chunks.join(''), chunks };
}

describe('progress output', () => {
  it('redraws one line in place on a terminal', () => {
    const out = capture(true);
    const bar = new ProgressBar(out.stream);
    for (let s = 1; s <= 10; s++) bar.update('image 1/1', s, 10, `step ${s}/10`);
    bar.done();
    expect(out.chunks).toHaveLength(11);
    expect(out.chunks.slice(0, 10).every((c) => c.startsWith('\r\x1b[2K'))).toBe(true);
    expect(out.chunks[9]).toContain('100% step 10/10');
    expect(out.text().endsWith('\n')).toBe(true);
  });

  it('prints a few plain lines when not a terminal', () => {
    const out = capture(false);
    const bar = new ProgressBar(out.stream);
    for (let s = 1; s <= 100; s++) bar.update('image 1/2', s, 100);
    for (let s = 1; s <= 100; s++) bar.update('image 2/2', s, 100);
    bar.done();
    const lines = out.text().trim().split('\n');
    // Each image: its first step, then 25, 50, 75 and 100 %.
    expect(lines).toHaveLength(10);
    expect(lines[0]).toBe('image 1/2 1% ');
    expect(lines[4]).toBe('image 1/2 100% ');
    expect(out.text()).not.toContain('\r');
  });

  it('formats sizes', () => {
    expect(formatBytes(512)).toBe('512 B');
    expect(formatBytes(8.4 * 1024 * 1024)).toBe('8.4 MB');
    expect(formatBytes(3.44 * 1024 ** 3)).toBe('3.4 GB');
  });
});
