// `npm run stack`: the whole cloud on this machine, no accounts, no internet. See --help.
import { s3Service, workerService } from '../worker/stack-services.ts';
import { CORE_SERVICES, startStack, type StackService } from './stack.ts';
import { STACK_FILE } from './stack-file.ts';

const HELP = `Usage: npm run stack [-- --help]

Starts the local Atelier Cloud and writes ${STACK_FILE}, then prints a line starting with READY.
Ctrl-C stops everything. A second run reuses the data (database, users, pool and client), and
first stops any Postgres or cognito-local a previous run left behind when it was killed.

Services: embedded PostgreSQL (unless DATABASE_URL is set), cognito-local (user pool with
password policy ≥ 8 chars, upper, lower, digit; public client with USER_PASSWORD_AUTH and
refresh) with a local mailbox: sign-up and password-reset codes are printed here and listed on
the mailbox page (its URL is printed and written to the stack file), migrations, s3rver (bucket created; data in .atelier/s3), the API, and one GPU worker
on the fixture models (built on first start if missing).

Environment:
  DATABASE_URL        use this Postgres instead of the embedded one (migrator/superuser URL)
  ATELIER_PG_PORT     embedded Postgres port (default 54329)
  ATELIER_PG_DATA     embedded Postgres data directory (default /tmp/atelier-<repo hash>/pg)
  COGNITO_PORT        cognito-local port (default 9229)
  ATELIER_MAILBOX_PORT  mailbox page port (default 8025)
  ATELIER_STACK_DIR   where the stack file and local data go (default .atelier)
  ATELIER_API_PORT    API port (default 8787)
  LOG_LEVEL           API log level (default info)
  S3_PORT             s3rver port (default 4569); S3_ENDPOINT uses an S3 you run instead
  S3_BUCKET           bucket (default atelier-local)
  ATELIER_CLOUD_MODELS, WORKER_CONCURRENCY   see cloud/src/worker/gen-config.ts`;

if (process.argv.includes('--help') || process.argv.includes('-h')) {
  console.log(HELP);
  process.exit(0);
}

// ── The stack's services, in start order (stopped in reverse). Add yours here. ──
const services: StackService[] = [
  // cloud-gen (issue 5): s3rver goes before `api` (the API needs S3_*), the worker after.
  ...CORE_SERVICES.flatMap((s) => (s.name === 'api' ? [s3Service, s] : [s])),
  workerService,
];
// ── end of services ──

const running = await startStack(services, { env: { ...process.env } }).catch((e: Error) => {
  console.error(`stack failed to start: ${e.message}`);
  process.exit(1);
});
console.log(`READY ${running.stack.apiUrl} (stack file: ${STACK_FILE})`);

let stopping = false;
const stop = (signal: string) => {
  if (stopping) {
    console.log('forced exit');
    process.exit(1);
  }
  stopping = true;
  console.log(`${signal}: stopping…`);
  running.stop().then(
    () => process.exit(0),
    () => process.exit(1),
  );
};
process.on('SIGINT', () => stop('SIGINT'));
process.on('SIGTERM', () => stop('SIGTERM'));
