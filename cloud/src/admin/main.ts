// `npm run admin -- <command>`: operator commands against DATABASE_URL or the local stack.
import { AppError } from '@atelier/common';
import { environment, loadConfig } from '../config.ts';
import { createPool } from '../db/pool.ts';
import { userInfo } from 'node:os';
import {
  confirmSignUp,
  grantAdminCommand,
  listAdmins,
  listUsers,
  report,
  revokeAdminCommand,
  setPlan,
  setUsageCommand,
  usage,
} from './commands.ts';

const HELP = `Usage: npm run admin -- <command>

Commands (<user> is an email address or a user id as list-users prints it):
  confirm <user>                confirm a sign-up without its emailed code (local stack)
  set-plan <user> <free|pro>    set a user's plan (as an operator; Stripe is not involved)
  usage <user>                  show the user's plan and usage in the current period
  set-usage <user> <n>          set the images used in the current period (recorded in the ledger)
  list-users                    list users: email, plan, id, created
  report [--from D] [--to D] [--json]
                                operator figures for UTC days D (YYYY-MM-DD; default the last 30):
                                daily active users, images per day, plan mix, conversion Free → Pro,
                                p50/p95 queue wait, failure rate (the same as GET /v1/admin/metrics)
  grant-admin <user>            let the user read GET /v1/admin/metrics (the admins table)
  revoke-admin <user>           take that away again
  list-admins                   list admins: email, id, granted, by whom

Connects to DATABASE_URL, or to the local stack in .atelier/stack.json. On the local stack,
sign-up and password-reset codes are also printed by \`npm run stack\` and listed on its mailbox
page (the "mailbox" URL in .atelier/stack.json).`;

const [cmd, ...args] = process.argv.slice(2);
if (!cmd || cmd === '--help' || cmd === '-h' || cmd === 'help') {
  console.log(HELP);
  process.exit(cmd ? 0 : 1);
}
const need = (n: number) => {
  if (args.length !== n) {
    console.error(`${cmd} takes ${n} argument(s)\n\n${HELP}`);
    process.exit(1);
  }
};

// Like cloud:migrate: the local stack's file only when DATABASE_URL is unset (images lack cloud/src/stack).
const env = environment().DATABASE_URL
  ? environment()
  : (await import('../stack/stack-file.ts')).stackEnv(environment());
const config = loadConfig(env);
const pool = createPool(config, 'system', { max: 1 });
try {
  let out: string;
  switch (cmd) {
    case 'confirm':
      need(1);
      out = await confirmSignUp(config.cognito, args[0]!);
      break;
    case 'set-plan':
      need(2);
      out = await setPlan(pool, args[0]!, args[1]!);
      break;
    case 'usage':
      need(1);
      out = await usage(pool, args[0]!);
      break;
    case 'set-usage':
      need(2);
      out = await setUsageCommand(pool, args[0]!, args[1]!);
      break;
    case 'list-users':
      need(0);
      out = await listUsers(pool);
      break;
    case 'report':
      out = await report(pool, args);
      break;
    case 'grant-admin':
      need(1);
      out = await grantAdminCommand(pool, args[0]!, `cli:${userInfo().username}`);
      break;
    case 'revoke-admin':
      need(1);
      out = await revokeAdminCommand(pool, args[0]!);
      break;
    case 'list-admins':
      need(0);
      out = await listAdmins(pool);
      break;
    default:
      console.error(`unknown command ${cmd}\n\n${HELP}`);
      process.exit(1);
  }
  console.log(out);
} catch (e) {
  console.error(AppError.is(e) ? e.message : ((e as Error)?.message ?? e));
  process.exitCode = 1;
} finally {
  await pool.end();
}
