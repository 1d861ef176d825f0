import type { CliConfig } from './config.ts';
import type { CliIO } from './output.ts';

export const EXIT = { ok: 0, failure: 1, usage: 2, canceled: 130 } as const;

/** A mistake in how the command was called: exit code 2 with a one-line reason. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export interface CliContext {
  io: CliIO;
  config: CliConfig;
  /** Fires on Ctrl-C: long commands cancel and exit 130. */
  signal: AbortSignal;
}
