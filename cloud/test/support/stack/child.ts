// A local stack of the services that run as child processes (Postgres, cognito-local + the mailbox) and the API they serve,
// in its own folder (ATELIER_STACK_DIR), for tests of what survives a killed run.
import { CORE_SERVICES, startStack } from '../../../src/stack/stack.ts';

const running = await startStack(CORE_SERVICES, { env: { ...process.env } });
console.log(`READY ${JSON.stringify(running.stack)}`);
process.on('SIGTERM', () => {
  running.stop().then(
    () => process.exit(0),
    () => process.exit(1),
  );
});
