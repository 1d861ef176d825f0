/** The browser host's configuration: command-line flags over environment over defaults, parsed once. */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { z } from 'zod';

export const REPO_ROOT = path.resolve(import.meta.dirname, '../..');

export const HELP = `Usage: node src-main/host/main.ts [options]
Runs the Atelier desktop services behind a loopback WebSocket bridge and serves the UI to a
browser (development and e2e tests only; never packaged). Prints "OPEN <url>" when ready.

  --port <n>          port on 127.0.0.1 (default: a random free port)     [ATELIER_HOST_PORT]
  --user-data <dir>   profile folder: library, settings, session          [ATELIER_USER_DATA]
                      (default: .atelier/profiles/default; use another for a second device)
  --stack <file>      local cloud stack description (default: .atelier/stack.json when present)
  --no-cloud          local-only: ignore the stack file
  --no-build          serve src-renderer/dist as it is, even if older than its sources
  --memory-limit <n>  memory local jobs may use, e.g. 8GB or 512MB        [ATELIER_MEMORY_LIMIT]
                      (default: what the computer has free when a job starts; larger jobs
                      are refused before they start, large images are decoded in tiles)
  --help              this text`;

const HostConfig = z.object({
  port: z.coerce.number().int().min(0).max(65535),
  userData: z.string().min(1),
  stackFile: z.string().nullable(),
  build: z.boolean(),
  help: z.boolean(),
  /** Unit: bytes; null means what the machine has free. */
  memoryLimit: z.number().int().positive().nullable(),
});

const UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
};

/** "8GB", "512 MiB", "1000000" → bytes; NaN when it is not a size. */
export function parseSize(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(text);
  const unit = m ? UNITS[m[2]!.toLowerCase()] : undefined;
  return m && unit ? Math.round(Number(m[1]) * unit) : Number.NaN;
}
export type HostConfig = z.infer<typeof HostConfig>;

export function loadHostConfig(
  argv: string[] = process.argv.slice(2),
  env: NodeJS.ProcessEnv = process.env,
): HostConfig {
  const { values } = parseArgs({
    args: argv,
    options: {
      port: { type: 'string' },
      'user-data': { type: 'string' },
      stack: { type: 'string' },
      'no-cloud': { type: 'boolean', default: false },
      'no-build': { type: 'boolean', default: false },
      'memory-limit': { type: 'string' },
      browser: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  });
  const parsed = HostConfig.safeParse({
    port: values.port ?? env.ATELIER_HOST_PORT ?? 0,
    userData: path.resolve(
      values['user-data'] ?? env.ATELIER_USER_DATA ?? path.join(REPO_ROOT, '.atelier/profiles/default'),
    ),
    stackFile: values['no-cloud'] ? null : path.resolve(values.stack ?? path.join(REPO_ROOT, '.atelier/stack.json')),
    build: !values['no-build'],
    help: values.help,
    memoryLimit: (() => {
      const text = values['memory-limit'] ?? env.ATELIER_MEMORY_LIMIT;
      return text === undefined || text === '' ? null : parseSize(text);
    })(),
  });
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const field = issue.path.join('.');
    if (field === 'memoryLimit')
      throw new Error('invalid --memory-limit / ATELIER_MEMORY_LIMIT: give a size such as 8GB or 512MB');
    throw new Error(`invalid ${field === 'port' ? '--port / ATELIER_HOST_PORT' : field}: ${issue.message}`);
  }
  return parsed.data;
}
