/** Operator commands (admin CLI and tests). They act for no user: run them on the system pool. */
import { AppError, IsoDay, PLAN_IDS, type PlanId } from '@atelier/common';
import { cognitoCall, CognitoError } from '../auth/cognito-client.ts';
import type { Pool } from '../db/pool.ts';
import { withSystemTx } from '../db/tx.ts';
import { publishEvent } from '../events/publish.ts';
import { usageEvent } from '../generations/repository.ts';
import { currentUsage, setUsage, type UsageRow } from '../quota/usage.ts';
import { grantAdmin, operatorMetrics, revokeAdmin } from '../usage/repository.ts';

/**
 * A user named by email or by id (the Cognito sub, as `list-users` prints it). An email that
 * several users share is refused with their ids, so the operator can pick one.
 */
export async function resolveUser(pool: Pool, ref: string): Promise<{ id: string; label: string }> {
  if (!ref.includes('@')) {
    const r = await pool.query<{ id: string; email: string | null }>('SELECT id, email FROM users WHERE id = $1', [
      ref,
    ]);
    if (!r.rows[0])
      throw new AppError(
        'NOT_FOUND',
        `No user with id ${ref}. Run \`npm run admin -- list-users\` for the ids (users appear after their first API request).`,
      );
    return { id: ref, label: r.rows[0].email ? `${r.rows[0].email} (${ref})` : ref };
  }
  const r = await pool.query<{ id: string }>(
    'SELECT id FROM users WHERE lower(email) = lower($1) ORDER BY created_at',
    [ref],
  );
  if (!r.rows[0])
    throw new AppError('NOT_FOUND', `No user with email ${ref} (users appear after their first API request).`);
  if (r.rows.length > 1)
    throw new AppError(
      'CONFLICT',
      `${r.rows.length} users have email ${ref}: ${r.rows.map((x) => x.id).join(', ')}. Pass one of these ids instead of the email.`,
    );
  return { id: r.rows[0].id, label: ref };
}

const show = (who: string, u: UsageRow) =>
  `${who}: plan ${u.plan}, ${u.used}/${u.limit} images, period ${u.periodStart.toISOString()} → ${u.periodEnd.toISOString()}`;

export async function setPlan(pool: Pool, ref: string, plan: string): Promise<string> {
  if (!PLAN_IDS.includes(plan as PlanId))
    throw new AppError('VALIDATION_FAILED', `plan must be one of ${PLAN_IDS.join(', ')}`);
  const { id: userId, label: email } = await resolveUser(pool, ref);
  return withSystemTx(pool, async (tx) => {
    await tx.query(
      `INSERT INTO subscriptions (user_id, plan, status) VALUES ($1, $2, 'active')
       ON CONFLICT (user_id) DO UPDATE SET plan = EXCLUDED.plan, status = 'active', updated_at = now()`,
      [userId, plan],
    );
    const usage = await currentUsage(tx, userId);
    await publishEvent(tx, userId, { type: 'plan.changed', plan: plan as PlanId });
    await publishEvent(tx, userId, usageEvent(usage));
    return show(email, usage);
  });
}

export async function usage(pool: Pool, ref: string): Promise<string> {
  const { id: userId, label } = await resolveUser(pool, ref);
  return show(label, await currentUsage(pool, userId));
}

export async function setUsageCommand(pool: Pool, ref: string, n: string): Promise<string> {
  const used = Number(n);
  if (!/^\d+$/.test(n.trim()) || !Number.isSafeInteger(used))
    throw new AppError('VALIDATION_FAILED', `n must be a whole number ≥ 0, not "${n}"`);
  const { id: userId, label: email } = await resolveUser(pool, ref);
  return withSystemTx(pool, async (tx) => {
    const u = await setUsage(tx, userId, used);
    await publishEvent(tx, userId, usageEvent(u));
    return show(email, u);
  });
}

export async function listUsers(pool: Pool): Promise<string> {
  const r = await pool.query<{ id: string; email: string | null; plan: string; created_at: Date }>(
    `SELECT u.id, u.email, ep.plan, u.created_at FROM users u JOIN effective_plans ep ON ep.user_id = u.id
     ORDER BY u.created_at`,
  );
  if (!r.rows.length) return 'no users yet';
  return r.rows.map((u) => `${u.email ?? '(no email)'}\t${u.plan}\t${u.id}\t${u.created_at.toISOString()}`).join('\n');
}

/**
 * Confirms a sign-up without its emailed code (cognito-local: the local stack and tests). `ref` is
 * the email the person signed up with or their user id (the sub).
 */
export async function confirmSignUp(
  cognito: { endpoint: string; userPoolId: string; region: string },
  ref: string,
): Promise<string> {
  if (cognito.region !== 'local')
    throw new AppError(
      'VALIDATION_FAILED',
      `confirm works on the local stack's cognito-local. For the Cognito pool in ${cognito.region}, run: aws cognito-idp admin-confirm-sign-up --user-pool-id ${cognito.userPoolId} --username <user>`,
    );
  try {
    const user = await cognitoCall<{ UserStatus?: string }>(cognito.endpoint, 'AdminGetUser', {
      UserPoolId: cognito.userPoolId,
      Username: ref,
    });
    if (user.UserStatus === 'CONFIRMED') return `${ref}: already confirmed; they can sign in.`;
    await cognitoCall(cognito.endpoint, 'AdminConfirmSignUp', { UserPoolId: cognito.userPoolId, Username: ref });
  } catch (e) {
    if (e instanceof CognitoError && e.type === 'UserNotFoundException')
      throw new AppError('NOT_FOUND', `No sign-up for ${ref} in the user pool. Check the address, or sign up first.`);
    if (e instanceof TypeError)
      throw new AppError(
        'SERVICE_UNAVAILABLE',
        `cognito-local is not reachable at ${cognito.endpoint}. Start the local stack (npm run stack or npm start).`,
      );
    throw e;
  }
  return `${ref}: sign-up confirmed; they can sign in now.`;
}

/** Grants operator rights (GET /v1/admin/metrics). The admins table is the only source of them. */
export async function grantAdminCommand(pool: Pool, ref: string, grantedBy: string): Promise<string> {
  const { id, label } = await resolveUser(pool, ref);
  const added = await grantAdmin(pool, id, grantedBy);
  return added ? `${label}: now an admin.` : `${label}: already an admin.`;
}

export async function revokeAdminCommand(pool: Pool, ref: string): Promise<string> {
  const { id, label } = await resolveUser(pool, ref);
  return (await revokeAdmin(pool, id)) ? `${label}: no longer an admin.` : `${label}: was not an admin.`;
}

export async function listAdmins(pool: Pool): Promise<string> {
  const r = await pool.query<{ user_id: string; email: string | null; granted_at: Date; granted_by: string }>(
    `SELECT a.user_id, u.email, a.granted_at, a.granted_by FROM admins a JOIN users u ON u.id = a.user_id
     ORDER BY a.granted_at`,
  );
  if (!r.rows.length) return 'no admins yet (grant-admin <user>)';
  return r.rows
    .map((a) => `${a.email ?? '(no email)'}\t${a.user_id}\t${a.granted_at.toISOString()}\t${a.granted_by}`)
    .join('\n');
}

/** `--from YYYY-MM-DD --to YYYY-MM-DD [--json]`; the range defaults to the 30 days ending today (UTC). */
export function parseReportArgs(args: string[], today: Date): { from: string; to: string; json: boolean } {
  const opts: Record<string, string> = {};
  let json = false;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--json') json = true;
    else if (a === '--from' || a === '--to') {
      const v = args[++i];
      if (v === undefined) throw new AppError('USAGE_RANGE_INVALID', `${a} needs a day as YYYY-MM-DD`);
      opts[a.slice(2)] = v;
    } else throw new AppError('VALIDATION_FAILED', `report does not take ${a}; use --from, --to and --json`);
  }
  const to = opts.to ?? today.toISOString().slice(0, 10);
  const from = opts.from ?? new Date(Date.parse(`${to}T00:00:00Z`) - 29 * 86_400_000).toISOString().slice(0, 10);
  for (const [name, v] of [
    ['from', from],
    ['to', to],
  ] as const)
    if (!IsoDay.safeParse(v).success)
      throw new AppError('USAGE_RANGE_INVALID', `--${name} must be a day as YYYY-MM-DD, not "${v}"`);
  return { from, to, json };
}

const pct = (r: number) => `${(r * 100).toFixed(1)} %`;
const msText = (v: number | null) => (v === null ? '—' : v < 10_000 ? `${v} ms` : `${(v / 1000).toFixed(1)} s`);

/** The operator report: daily table then the range's figures (or the same as JSON). */
export async function report(pool: Pool, args: string[], today = new Date()): Promise<string> {
  const { from, to, json } = parseReportArgs(args, today);
  const m = await operatorMetrics(pool, from, to);
  if (json) return JSON.stringify(m, null, 2);
  const lines = [`Atelier Cloud report ${from} → ${to} (UTC days)`, '', 'date        active users  images'];
  for (const d of m.days)
    lines.push(`${d.date}  ${String(d.activeUsers).padStart(12)}  ${String(d.images).padStart(6)}`);
  lines.push(
    '',
    `active users in range   ${m.activeUsers}`,
    `images in range         ${m.images}`,
    `plan mix (now)          free ${m.planMix.free}, pro ${m.planMix.pro}`,
    `conversion Free → Pro   ${m.conversion.converted} of ${m.conversion.freeUsers} (${pct(m.conversion.rate)})`,
    `queue wait              p50 ${msText(m.queueWait.p50Ms)}, p95 ${msText(m.queueWait.p95Ms)} (${m.queueWait.samples} jobs)`,
    `failure rate            ${m.failures.failed} of ${m.failures.finished} (${pct(m.failures.rate)})`,
  );
  return lines.join('\n');
}
