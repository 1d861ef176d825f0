/**
 * The local stack's mailbox: where cognito-local's sign-up and password-reset codes go, since no
 * mail leaves this machine. cognito-local "delivers" a code by logging a box (its console message
 * sender); the stack reads those lines from its output, prints each code in the stack's terminal,
 * and serves them on a small loopback page (and as JSON for tools and tests). Development only:
 * the production pool sends real mail through Cognito.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export type MailKind = 'sign-up' | 'password-reset' | 'other';

export interface MailMessage {
  id: number;
  /** The email address the code was sent to. */
  to: string;
  /** cognito-local's user name (the user's sub in a pool keyed by email). */
  username: string | null;
  kind: MailKind;
  subject: string;
  code: string;
  receivedAt: string;
}

/** Cognito operations that send a sign-up confirmation code, and those that send a reset code. */
const SIGN_UP = new Set(['SignUp', 'ResendConfirmationCode']);
const RESET = new Set(['ForgotPassword', 'AdminResetUserPassword']);

// ESC [ … m: the colours cognito-local's pretty logger adds.
const ANSI = new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*m`, 'g');

/**
 * Turns cognito-local's output, line by line, into messages. A delivery is a box that starts on
 * the line "<reqId> <Operation> ╭──…╮" and lists "Destination:" and "Code:" inside "│ … │".
 */
export function createCodeDeliveryParser(onMessage: (m: Omit<MailMessage, 'id' | 'receivedAt'>) => void) {
  let open: { operation: string; fields: Record<string, string> } | null = null;
  return (rawLine: string): void => {
    const line = rawLine.replace(ANSI, '');
    const start = /(\S+)\s+([A-Za-z]+)\s+╭/.exec(line);
    if (start) {
      open = { operation: start[2]!, fields: {} };
      return;
    }
    if (!open) return;
    const field = /│\s*([A-Za-z ]+?):\s+(.*?)\s*│/.exec(line);
    if (field) {
      open.fields[field[1]!] = field[2]!;
      return;
    }
    if (line.includes('╰')) {
      const { operation, fields } = open;
      open = null;
      if (!fields.Code || !fields.Destination) return;
      const kind: MailKind = SIGN_UP.has(operation) ? 'sign-up' : RESET.has(operation) ? 'password-reset' : 'other';
      onMessage({
        to: fields.Destination,
        username: fields.Username ?? null,
        kind,
        subject:
          kind === 'sign-up'
            ? 'Your Atelier confirmation code'
            : kind === 'password-reset'
              ? 'Your Atelier password reset code'
              : `Your Atelier code (${operation})`,
        code: fields.Code,
      });
    }
  };
}

export interface Mailbox {
  /** The page people open: http://127.0.0.1:<port>/ */
  url: string;
  /** The same messages as JSON: { messages: MailMessage[] }, newest first. */
  messagesUrl: string;
  deliver(m: Omit<MailMessage, 'id' | 'receivedAt'>): MailMessage;
  messages(): MailMessage[];
  stop(): Promise<void>;
}

const escapeHtml = (s: string) =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

function page(messages: MailMessage[]): string {
  const rows = messages
    .map(
      (m) => `<li class="msg" data-to="${escapeHtml(m.to)}" data-kind="${m.kind}">
  <div class="meta"><span class="to">${escapeHtml(m.to)}</span> · ${escapeHtml(m.subject)} · <time>${escapeHtml(m.receivedAt)}</time></div>
  <div class="code" aria-label="code">${escapeHtml(m.code)}</div>
</li>`,
    )
    .join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>Atelier local mailbox</title>
<meta http-equiv="refresh" content="5">
<style>
  :root { color-scheme: light dark; font-family: system-ui, sans-serif; }
  body { max-width: 42rem; margin: 2rem auto; padding: 0 1rem; }
  ul { list-style: none; padding: 0; }
  .msg { border: 1px solid #8886; border-radius: 8px; padding: .75rem 1rem; margin: .5rem 0; }
  .meta { font-size: .9rem; opacity: .8; }
  .code { font: 600 1.6rem ui-monospace, monospace; letter-spacing: .15em; margin-top: .25rem; }
</style></head>
<body>
<h1>Local mailbox</h1>
<p>Codes the local Atelier stack would have emailed (sign-up and password reset). Nothing here leaves this computer. The page refreshes every 5 seconds.</p>
${messages.length ? `<ul>\n${rows}\n</ul>` : '<p id="empty">No messages yet. Sign up or ask for a password reset in Atelier, and the code appears here.</p>'}
</body></html>`;
}

/** Starts the mailbox page on 127.0.0.1:`port` (0 = any free port). Keeps the last 200 messages. */
export async function startMailbox(opts: { port: number; onMessage?: (m: MailMessage) => void }): Promise<Mailbox> {
  const list: MailMessage[] = [];
  let next = 1;
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const headers = {
      'cache-control': 'no-store',
      'x-content-type-options': 'nosniff',
      'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'",
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { ...headers, allow: 'GET' }).end();
      return;
    }
    if (url.pathname === '/messages.json') {
      const to = url.searchParams.get('to')?.toLowerCase();
      const messages = [...list].reverse().filter((m) => !to || m.to.toLowerCase() === to);
      res.writeHead(200, { ...headers, 'content-type': 'application/json' }).end(JSON.stringify({ messages }));
      return;
    }
    if (url.pathname === '/') {
      res.writeHead(200, { ...headers, 'content-type': 'text/html; charset=utf-8' }).end(page([...list].reverse()));
      return;
    }
    res.writeHead(404, { ...headers, 'content-type': 'text/plain' }).end('not found');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const base = `http://127.0.0.1:${port}`;
  return {
    url: `${base}/`,
    messagesUrl: `${base}/messages.json`,
    deliver(m) {
      const msg: MailMessage = { ...m, id: next++, receivedAt: new Date().toISOString() };
      list.push(msg);
      if (list.length > 200) list.shift();
      opts.onMessage?.(msg);
      return msg;
    },
    messages: () => [...list].reverse(),
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
