/**
 * The renderer's Content-Security-Policy, one builder for both shells (app:// in Electron, the
 * loopback origin in the browser host). No inline or eval'd script anywhere; network access only
 * to the app itself and the configured cloud API/WS origins; images from the app, data: previews
 * and the S3 origins presigned URLs point at.
 */
export interface CspOptions {
  /** Origins the renderer may open connections to besides 'self' (API, events WS). */
  connect?: string[];
  /** Origins images may come from besides 'self' and data: (app:, S3). */
  img?: string[];
}

/** An origin (scheme://host[:port]) or a scheme source (app:); anything else is refused. */
function source(value: string): string {
  if (/^[a-z][a-z0-9+.-]*:$/.test(value)) return value;
  const origin = new URL(value).origin;
  if (origin === 'null') throw new Error(`not an origin: ${value}`);
  return origin;
}

export function buildCsp(opts: CspOptions = {}): string {
  const connect = [...new Set((opts.connect ?? []).map(source))];
  const img = [...new Set((opts.img ?? []).map(source))];
  return [
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    `img-src 'self' data: blob: ${img.join(' ')}`.trim(),
    "font-src 'self'",
    `connect-src 'self' ${connect.join(' ')}`.trim(),
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
    "frame-src 'none'",
    "worker-src 'self'",
  ].join('; ');
}

/** The WebSocket origin (ws/wss) of an http(s) API URL. */
export function wsOriginOf(apiUrl: string): string {
  const u = new URL(apiUrl);
  u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
  return u.origin;
}
