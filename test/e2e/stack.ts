// What the e2e suite reads from the local stack: .atelier/stack.json, and the confirmation code
// cognito-local "emailed" (it keeps issued codes in its pool file, <data>/.cognito/db/<poolId>.json).
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';

export interface StackInfo {
  apiUrl: string;
  cognito: { endpoint: string; userPoolId: string; clientId: string; dataDir?: string };
  [k: string]: unknown;
}

export function readStack(repo: string): StackInfo {
  const file = path.join(repo, '.atelier/stack.json');
  if (!existsSync(file)) throw new Error(`${file} is missing: is the stack running?`);
  return JSON.parse(readFileSync(file, 'utf8')) as StackInfo;
}

/** Every `<poolId>.json` under `root`, a few levels deep (cognito-local's data folder layout). */
function poolFiles(root: string, poolId: string, depth = 4): string[] {
  if (depth < 0 || !existsSync(root)) return [];
  const out: string[] = [];
  let entries: string[];
  try {
    entries = readdirSync(root);
  } catch {
    return [];
  }
  for (const name of entries) {
    const p = path.join(root, name);
    if (name === `${poolId}.json`) out.push(p);
    else if (!name.startsWith('node_modules')) {
      try {
        if (statSync(p).isDirectory()) out.push(...poolFiles(p, poolId, depth - 1));
      } catch {
        // Vanished while walking.
      }
    }
  }
  return out;
}

export function findConfirmationCode(repo: string, stack: StackInfo, email: string): string {
  const roots = [
    stack.cognito.dataDir,
    typeof stack.dataDir === 'string' ? stack.dataDir : undefined,
    path.join(repo, '.atelier'),
  ].filter((r): r is string => typeof r === 'string');
  // Where cloud/src/stack keeps cognito-local's data; the walk is the fallback for other layouts.
  const known = path.join(repo, '.atelier/cognito/.cognito/db', `${stack.cognito.userPoolId}.json`);
  const files = existsSync(known) ? [known] : roots.flatMap((r) => poolFiles(r, stack.cognito.userPoolId));
  for (const file of files) {
    const db = JSON.parse(readFileSync(file, 'utf8')) as {
      Users?: Record<string, { Attributes?: { Name: string; Value: string }[]; ConfirmationCode?: string }>;
    };
    const user = Object.values(db.Users ?? {}).find((u) =>
      u.Attributes?.some((a) => a.Name === 'email' && a.Value === email),
    );
    if (user?.ConfirmationCode) return user.ConfirmationCode;
  }
  throw new Error(`no confirmation code for ${email} in cognito-local's data under ${roots.join(', ')}`);
}
