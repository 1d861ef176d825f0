import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { afterAll, describe, expect, it } from 'vitest';
import { cognitoCall } from '../src/stack/cognito.ts';
import type { ChildRecord } from '../src/stack/children.ts';
import type { MailMessage } from '../src/stack/mailbox.ts';
import { freePort } from './support/free-port.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'atelier-stack-children-'));
chmodSync(dir, 0o755); // as root, Postgres runs as `postgres` and must reach its data folder
const started: ChildProcess[] = [];
afterAll(async () => {
  for (const c of started) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  // Whatever the test left running (if it failed midway) is stopped the way the next run would.
  const { reapStaleChildren } = await import('../src/stack/children.ts');
  await reapStaleChildren(dir);
  rmSync(dir, { recursive: true, force: true });
});

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

interface Run {
  child: ChildProcess;
  stack: { cognito: { endpoint: string; clientId: string }; mailbox: { url: string; messagesUrl: string } };
  lines: string[];
}

async function runStack(env: Record<string, string>): Promise<Run> {
  const child = spawn(process.execPath, [path.resolve(import.meta.dirname, 'support/stack/child.ts')], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  started.push(child);
  const lines: string[] = [];
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const rl = readline.createInterface({ input: child.stdout! });
  const stack = await new Promise<Run['stack']>((resolve, reject) => {
    rl.on('line', (line) => {
      lines.push(line);
      if (line.startsWith('READY ')) resolve(JSON.parse(line.slice(6)) as Run['stack']);
    });
    child.once('exit', (code) =>
      reject(new Error(`stack exited (${code}) before READY:\n${lines.join('\n')}\n${stderr}`)),
    );
  });
  return { child, stack, lines };
}

const children = (): ChildRecord[] =>
  JSON.parse(readFileSync(path.join(dir, 'children.json'), 'utf8')) as ChildRecord[];

describe('the local stack after kill -9', () => {
  it('stops the killed run’s Postgres and cognito-local and starts cleanly; codes reach the terminal and the mailbox', async () => {
    const env = {
      ATELIER_STACK_DIR: dir,
      ATELIER_PG_DATA: path.join(dir, 'pg'),
      ATELIER_PG_PORT: String(await freePort()),
      COGNITO_PORT: String(await freePort()),
      ATELIER_MAILBOX_PORT: '0',
      ATELIER_API_PORT: '0',
    };
    const first = await runStack(env);
    const left = children();
    expect(left.map((c) => c.name).sort()).toEqual(['cognito-local', 'postgres']);
    first.child.kill('SIGKILL');
    await new Promise((r) => first.child.once('exit', r));
    // What kill -9 does: the children outlive their parent.
    for (const c of left) expect(alive(c.pid)).toBe(true);

    const second = await runStack(env);
    for (const c of left) expect(alive(c.pid)).toBe(false);
    expect(second.lines.join('\n')).toMatch(
      /stopped postgres \(pid \d+\) left running by a previous run that was killed/,
    );

    // Sign-up: the code is printed in the terminal and listed on the mailbox page, and it works.
    const email = `newcomer-${Date.now()}@example.test`;
    const { endpoint, clientId } = second.stack.cognito;
    await cognitoCall(endpoint, 'SignUp', {
      ClientId: clientId,
      Username: email,
      Password: 'Atelier-Test-1',
      UserAttributes: [{ Name: 'email', Value: email }],
    });
    await expect
      .poll(() => second.lines.some((l) => l.includes(`Sign-up code for ${email}: `)), { timeout: 10_000 })
      .toBe(true);
    const printed = /Sign-up code for \S+: (\d{6})/.exec(second.lines.find((l) => l.includes(email))!)![1]!;
    const listed = (await (
      await fetch(`${second.stack.mailbox.messagesUrl}?to=${encodeURIComponent(email)}`)
    ).json()) as {
      messages: MailMessage[];
    };
    expect(listed.messages[0]).toMatchObject({ to: email, kind: 'sign-up', code: printed });
    const html = await (await fetch(second.stack.mailbox.url)).text();
    expect(html).toContain(email);
    expect(html).toContain(printed);
    await cognitoCall(endpoint, 'ConfirmSignUp', { ClientId: clientId, Username: email, ConfirmationCode: printed });

    // Password reset: a second message, of its kind.
    await cognitoCall(endpoint, 'ForgotPassword', { ClientId: clientId, Username: email });
    await expect
      .poll(async () => {
        const r = (await (await fetch(second.stack.mailbox.messagesUrl)).json()) as { messages: MailMessage[] };
        return r.messages[0]?.kind;
      })
      .toBe('password-reset');

    // A clean stop stops its children and forgets them.
    const mine = children();
    second.child.kill('SIGTERM');
    await new Promise((r) => second.child.once('exit', r));
    for (const c of mine) expect(alive(c.pid)).toBe(false);
    expect(existsSync(path.join(dir, 'children.json'))).toBe(false);
  });
});
