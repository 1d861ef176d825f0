import { AppError } from '@atelier/common';
import { cliConfigFromEnv, type CliConfig } from './config.ts';
import { EXIT, UsageError, type CliContext } from './errors.ts';
import type { CliIO } from './output.ts';

export { EXIT, UsageError, type CliContext } from './errors.ts';

const HELP = `Usage: atelier <command> [options]

Generate images with Stable Diffusion ONNX models on this machine.

Commands:
  generate "<prompt>"   generate images (atelier generate --help)
  models <subcommand>   list models, browse the catalogue of real ones and download them,
                        import a folder, remove, choose the default (atelier models --help)
  doctor                check execution providers, threads and models, and what to fix

Options:
  -h, --help            show help (every command has its own --help)
  -v, --version         show the version

Environment:
  ATELIER_MODELS_DIR    the CLI's models folder (default: the platform data folder; the desktop
                        app has its own, <profile>/models: point this at it to share one)
  ATELIER_CACHE_DIR     the optimised-graph cache folder
  ATELIER_THREADS       intra-op threads (default: physical cores)
  ATELIER_BUNDLED_MODELS_DIR  folders of models shipped with Atelier (default: native/models; "" for none)`;

export async function main(argv: string[], io: CliIO, config?: CliConfig, signal?: AbortSignal): Promise<number> {
  const [command, ...rest] = argv;
  try {
    const ctx: CliContext = {
      io,
      config: config ?? configOrUsage(),
      signal: signal ?? new AbortController().signal,
    };
    switch (command) {
      case undefined:
      case '-h':
      case '--help':
      case 'help':
        io.stdout.write(`${HELP}\n`);
        return command === undefined ? EXIT.usage : EXIT.ok;
      case '-v':
      case '--version':
        io.stdout.write(`${await version()}\n`);
        return EXIT.ok;
      case 'generate':
        return await (await import('./generate.ts')).generateCommand(rest, ctx);
      case 'models':
        return await (await import('./models.ts')).modelsCommand(rest, ctx);
      case 'doctor':
        return await (await import('./doctor.ts')).doctorCommand(rest, ctx);
      default:
        throw new UsageError(`unknown command "${command}" (commands: generate, models, doctor; see atelier --help)`);
    }
  } catch (e) {
    return report(e, io);
  }
}

function configOrUsage(): CliConfig {
  try {
    return cliConfigFromEnv();
  } catch (e) {
    throw new UsageError(e instanceof Error ? e.message : String(e));
  }
}

/** Prints one line for a failure and returns the exit code. */
export function report(e: unknown, io: CliIO): number {
  if (e instanceof UsageError) {
    io.stderr.write(`atelier: ${e.message}\n`);
    return EXIT.usage;
  }
  if (isParseArgsError(e)) {
    io.stderr.write(`atelier: ${e.message.split('\n')[0]} (see --help)\n`);
    return EXIT.usage;
  }
  if (AppError.is(e)) {
    if (e.code === 'CANCELED') {
      io.stderr.write(`atelier: canceled\n`);
      return EXIT.canceled;
    }
    // The user message says what to do; the message says what exactly was wrong (e.g. which graph
    // input of which file). A command-line user wants both, on one line.
    const detail = e.message && !saysTheSame(e.userMessage, e.message) ? ` (${e.message})` : '';
    // The stable code last, in brackets, for scripts to match on.
    io.stderr.write(`atelier: ${`${e.userMessage}${detail}`.replace(/\s*\n\s*/g, ' ')} [${e.code}]\n`);
    return e.code === 'VALIDATION_FAILED' ? EXIT.usage : EXIT.failure;
  }
  const message = e instanceof Error ? e.message : String(e);
  io.stderr.write(`atelier: unexpected error: ${message.split('\n')[0]}\n`);
  return EXIT.failure;
}

/** Whether `detail` adds nothing to `said`: every word of it is already there (so it is not printed twice). */
function saysTheSame(said: string, detail: string): boolean {
  const words = (s: string) => s.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? [];
  const have = new Set(words(said));
  return words(detail).every((w) => have.has(w));
}

function isParseArgsError(e: unknown): e is Error {
  const code = (e as { code?: unknown } | null)?.code;
  return e instanceof Error && typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS_');
}

async function version(): Promise<string> {
  const { readFile } = await import('node:fs/promises');
  const pkg = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return `atelier ${pkg.version}`;
}
