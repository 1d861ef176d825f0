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
  --help              this text`;

const HostConfig = z.object({
  port: z.coerce.number().int().min(0).max(65535),
  userData: z.string().min(1),
  stackFile: z.string().nullable(),
  build: z.boolean(),
  help: z.boolean(),
});
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
  });
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new Error(
      `invalid ${issue.path.join('.') === 'port' ? '--port / ATELIER_HOST_PORT' : issue.path.join('.')}: ${issue.message}`,
    );
  }
  return parsed.data;
}
