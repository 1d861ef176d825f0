/**
 * The browser host's loopback bridge: one HTTP server on 127.0.0.1 that serves the built renderer
 * and the library's image files, and a WebSocket at /bridge speaking the IPC contract:
 *   client → {type:'hello', token}            (first, within 10 s, or the socket is closed)
 *   client → {id, type:'invoke', channel, input}   server → {id, type:'result', envelope}
 *   server → {type:'event', name, payload}
 * Every request needs the random token (image files take it as ?token=, since <img> cannot set
 * headers); Host and Origin must be this loopback origin, which stops DNS-rebinding pages.
 */
import { timingSafeEqual } from 'node:crypto';
import { createReadStream, statSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { WebSocketServer, type WebSocket } from 'ws';
import type { IpcHandlers } from '@atelier/common';
import { buildCsp } from '../services/csp.ts';
import type { DesktopEvents } from '../services/desktop-services.ts';
import { dispatchIpc } from '../services/ipc-dispatch.ts';
import { contentTypeFor } from '../services/content-type.ts';

export interface BridgeOptions {
  handlers: IpcHandlers;
  events: DesktopEvents;
  token: string;
  /** 0 = a random free port. */
  port: number;
  /** The built renderer (index.html + assets); null serves no UI (tests of the protocol). */
  rendererDir: string | null;
  filesDir: string;
  /** Extra origins the page may connect to / load images from (the cloud API, S3). */
  csp?: { connect?: string[]; img?: string[] };
  log?: (msg: string, err?: unknown) => void;
}

export interface Bridge {
  port: number;
  origin: string;
  /** The page to open: the token travels in the fragment, which never reaches a server log. */
  pageUrl: string;
  close(): Promise<void>;
}

// An image or its thumbnail (img_….thumb.png, issue 13).
const FILE_NAME = /^img_[0-9A-Z]{22}(?:\.thumb)?\.png$/;

function sameToken(a: string | null | undefined, b: string): boolean {
  if (typeof a !== 'string') return false;
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

export async function startBridge(opts: BridgeOptions): Promise<Bridge> {
  const log = opts.log ?? (() => undefined);
  let origin = '';
  let allowedHosts = new Set<string>();
  let csp = '';

  function sendFile(res: http.ServerResponse, file: string, headers: Record<string, string> = {}): void {
    let size: number;
    try {
      const st = statSync(file);
      if (!st.isFile()) throw new Error('not a file');
      size = st.size;
    } catch {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
      return;
    }
    res.writeHead(200, {
      'content-type': contentTypeFor(file),
      'content-length': String(size),
      'x-content-type-options': 'nosniff',
      ...headers,
    });
    createReadStream(file).pipe(res);
  }

  const server = http.createServer((req, res) => {
    if (!allowedHosts.has(req.headers.host ?? '')) {
      res.writeHead(421, { 'content-type': 'text/plain' }).end('wrong host');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    const url = new URL(req.url ?? '/', origin);
    if (url.pathname.startsWith('/files/')) {
      const name = decodeURIComponent(url.pathname.slice('/files/'.length));
      if (!sameToken(url.searchParams.get('token'), opts.token)) {
        res.writeHead(401, { 'content-type': 'text/plain' }).end('token required');
        return;
      }
      if (!FILE_NAME.test(name)) {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
        return;
      }
      sendFile(res, path.join(opts.filesDir, name), { 'cache-control': 'private, max-age=31536000, immutable' });
      return;
    }
    if (!opts.rendererDir) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('no UI is served by this bridge');
      return;
    }
    const root = path.resolve(opts.rendererDir);
    let file = path.resolve(root, `.${decodeURIComponent(url.pathname)}`);
    if (file !== root && !file.startsWith(root + path.sep)) {
      res.writeHead(404).end();
      return;
    }
    // Single-page app: unknown paths without an extension get index.html.
    if (url.pathname === '/' || (!path.extname(file) && !safeIsFile(file))) file = path.join(root, 'index.html');
    const html = file.endsWith('.html');
    sendFile(res, file, {
      'cache-control': html ? 'no-store' : 'no-cache',
      ...(html
        ? {
            'content-security-policy': csp,
            'referrer-policy': 'no-referrer',
            'x-frame-options': 'DENY',
            'cross-origin-opener-policy': 'same-origin',
          }
        : {}),
    });
  });

  const wss = new WebSocketServer({
    server,
    path: '/bridge',
    // A dropped picture travels as base64 (MAX_PICTURE_BYTES of bytes is about 27 MiB of text).
    maxPayload: 32 * 1024 * 1024,
    verifyClient: ({ origin: o, req }: { origin: string; req: http.IncomingMessage }) =>
      allowedHosts.has(req.headers.host ?? '') && (o === origin || o === origin.replace('127.0.0.1', 'localhost')),
  });
  const authed = new Set<WebSocket>();
  wss.on('connection', (ws) => {
    const helloTimer = setTimeout(() => ws.close(4401, 'hello expected'), 10_000);
    ws.on('message', async (data) => {
      let msg: { type?: unknown; token?: unknown; id?: unknown; channel?: unknown; input?: unknown };
      try {
        msg = JSON.parse(data.toString()) as typeof msg;
      } catch {
        ws.close(4400, 'bad message');
        return;
      }
      if (msg.type === 'hello') {
        if (sameToken(typeof msg.token === 'string' ? msg.token : null, opts.token)) {
          clearTimeout(helloTimer);
          authed.add(ws);
        } else ws.close(4401, 'bad token');
        return;
      }
      if (msg.type === 'invoke') {
        const envelope = await dispatchIpc(
          opts.handlers,
          { channel: msg.channel, input: msg.input, senderAllowed: authed.has(ws) },
          (err, channel) => log(`IPC ${channel} failed`, err),
        );
        if (ws.readyState === ws.OPEN) ws.send(JSON.stringify({ id: msg.id, type: 'result', envelope }));
      }
    });
    ws.on('close', () => {
      clearTimeout(helloTimer);
      authed.delete(ws);
    });
  });
  const unsubscribe = opts.events.onAny((name, payload) => {
    if (authed.size === 0) return;
    const text = JSON.stringify({ type: 'event', name, payload });
    for (const ws of authed) if (ws.readyState === ws.OPEN) ws.send(text);
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  origin = `http://127.0.0.1:${port}`;
  allowedHosts = new Set([`127.0.0.1:${port}`, `localhost:${port}`]);
  csp = buildCsp({
    connect: [`ws://127.0.0.1:${port}`, `ws://localhost:${port}`, ...(opts.csp?.connect ?? [])],
    img: opts.csp?.img ?? [],
  });
  return {
    port,
    origin,
    pageUrl: `${origin}/#token=${opts.token}`,
    async close() {
      unsubscribe();
      for (const ws of wss.clients) ws.terminate();
      await new Promise<void>((r) => wss.close(() => r()));
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

function safeIsFile(file: string): boolean {
  try {
    return statSync(file).isFile();
  } catch {
    return false;
  }
}

/** The URL the renderer loads a library file from, through this bridge. */
export function bridgeFileUrl(origin: () => string, token: string) {
  return (fileName: string) => `${origin()}/files/${encodeURIComponent(fileName)}?token=${token}`;
}
