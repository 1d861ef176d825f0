/** Where the CLI writes: injectable so tests and other front ends can capture it. */
export interface CliIO {
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  stderr: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KB', 'MB', 'GB', 'TB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i += 1;
  }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

/**
 * A one-line progress bar on stderr. On a terminal it redraws in place; otherwise (a pipe, a
 * log file, CI) it prints a plain line only when the label changes or at 25 % marks, so logs
 * stay readable.
 */
export class ProgressBar {
  private readonly stream: CliIO['stderr'];
  private readonly tty: boolean;
  private lastPlain = '';
  private lastQuarter = -1;
  private drawn = false;

  constructor(stream: CliIO['stderr']) {
    this.stream = stream;
    this.tty = stream.isTTY === true;
  }

  update(label: string, done: number, total: number, suffix = ''): void {
    const frac = total > 0 ? Math.min(1, done / total) : 0;
    if (this.tty) {
      const width = Math.max(10, Math.min(40, (this.stream.columns ?? 80) - label.length - suffix.length - 20));
      const fill = Math.round(frac * width);
      const bar = `${'█'.repeat(fill)}${'░'.repeat(width - fill)}`;
      this.stream.write(`\r\x1b[2K${label} ${bar} ${Math.round(frac * 100)}% ${suffix}`);
      this.drawn = true;
      return;
    }
    const quarter = Math.floor(frac * 4);
    if (label !== this.lastPlain) {
      this.lastPlain = label;
      this.lastQuarter = -1;
    }
    if (quarter > this.lastQuarter) {
      this.stream.write(`${label} ${Math.round(frac * 100)}% ${suffix}\n`);
      this.lastQuarter = quarter;
    }
  }

  done(): void {
    if (this.tty && this.drawn) this.stream.write('\n');
    this.drawn = false;
    this.lastPlain = '';
    this.lastQuarter = -1;
  }
}
