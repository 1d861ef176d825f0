/**
 * One HTTP attempt of a delivery: POST the exact body to the pinned address, no redirects
 * (Node's http client never follows them; a 3xx is a failed attempt), the response body read up
 * to a cap and then dropped, and the whole exchange cut off after the timeout — a receiver that
 * accepts the connection and never answers holds one slot for at most that long.
 */
import http from 'node:http';
import https from 'node:https';
import type { LookupFunction } from 'node:net';
import type { ResolvedTarget } from './ssrf.ts';

/** Unit: bytes of a receiver's response body kept (the rest is discarded unread). */
export const RESPONSE_BODY_CAP = 4096;

export interface AttemptResult {
  ok: boolean;
  /** null when no response arrived. */
  status: number | null;
  /** Unit: ms. */
  latencyMs: number;
  error: string | null;
}

export interface SendOptions {
  headers: Record<string, string>;
  /** Unit: ms. */
  timeoutMs: number;
  agents?: { http: http.Agent; https: https.Agent };
}

export function createAgents(): { http: http.Agent; https: https.Agent } {
  return {
    http: new http.Agent({ keepAlive: true, maxSockets: 64 }),
    https: new https.Agent({ keepAlive: true, maxSockets: 64 }),
  };
}

export function sendAttempt(target: ResolvedTarget, body: string, opts: SendOptions): Promise<AttemptResult> {
  const started = performance.now();
  const elapsed = () => Math.round(performance.now() - started);
  const isHttps = target.url.protocol === 'https:';
  // The connection goes to the address that was checked, whatever DNS answers now (rebinding).
  const pinned: LookupFunction = (_host, options, cb) => {
    if ((options as { all?: boolean }).all)
      (cb as never as (e: null, a: unknown[]) => void)(null, [{ address: target.address, family: target.family }]);
    else cb(null, target.address, target.family);
  };
  return new Promise<AttemptResult>((resolve) => {
    let settled = false;
    const done = (r: AttemptResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(r);
    };
    const req = (isHttps ? https : http).request(
      target.url,
      {
        method: 'POST',
        lookup: pinned,
        headers: { ...opts.headers, 'content-length': String(Buffer.byteLength(body)) },
        agent: opts.agents ? (isHttps ? opts.agents.https : opts.agents.http) : false,
      },
      (res) => {
        const status = res.statusCode ?? 0;
        let kept = 0;
        res.on('data', (chunk: Buffer) => {
          kept += chunk.length;
          // Enough to know it answered; a receiver streaming forever must not hold the slot.
          if (kept > RESPONSE_BODY_CAP) res.destroy();
        });
        const finish = () => {
          const ok = status >= 200 && status < 300;
          const error = ok
            ? null
            : status >= 300 && status < 400
              ? `redirect ${status} not followed${res.headers.location ? ` (Location: ${String(res.headers.location).slice(0, 200)})` : ''}`
              : `HTTP ${status}`;
          done({ ok, status, latencyMs: elapsed(), error });
        };
        res.on('end', finish);
        res.on('close', finish);
        res.on('error', finish);
      },
    );
    const timer = setTimeout(() => {
      req.destroy(new Error('timeout'));
      done({ ok: false, status: null, latencyMs: elapsed(), error: `timed out after ${opts.timeoutMs} ms` });
    }, opts.timeoutMs);
    req.on('error', (e: NodeJS.ErrnoException) =>
      done({ ok: false, status: null, latencyMs: elapsed(), error: e.code ?? e.message }),
    );
    req.end(body);
  });
}
