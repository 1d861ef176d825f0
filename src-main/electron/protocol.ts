/** The app:// scheme: the built renderer and the library's image files, with the CSP on every document. */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { protocol } from 'electron';
import { APP_SCHEME, resolveAppRequest } from './policy.ts';
import { contentTypeFor } from '../services/content-type.ts';

/** Must run before app 'ready'. */
export function registerAppScheme(): void {
  protocol.registerSchemesAsPrivileged([
    {
      scheme: APP_SCHEME,
      privileges: { standard: true, secure: true, supportFetchAPI: true, stream: true, codeCache: true },
    },
  ]);
}

export function handleAppProtocol(opts: { rendererDir: string; filesDir: string; csp: string }): void {
  protocol.handle(APP_SCHEME, async (request) => {
    const target = resolveAppRequest(request.url);
    if (target.kind === 'not-found') return new Response('not found', { status: 404 });
    const file =
      target.kind === 'file'
        ? path.join(opts.filesDir, target.name)
        : path.join(opts.rendererDir, ...target.relPath.split('/'));
    let body: Buffer;
    try {
      body = await readFile(file);
    } catch {
      return new Response('not found', { status: 404 });
    }
    const type = contentTypeFor(file);
    const headers: Record<string, string> = { 'content-type': type, 'x-content-type-options': 'nosniff' };
    if (type.startsWith('text/html'))
      Object.assign(headers, { 'content-security-policy': opts.csp, 'cache-control': 'no-store' });
    return new Response(new Uint8Array(body), { status: 200, headers });
  });
}
