/**
 * A SigV4-verifying proxy for tests, in front of s3rver (which accepts any signature): every
 * request must carry a valid AWS Signature Version 4 — presigned in the query string or in the
 * Authorization header — recomputed here with the AWS SDK's own signer (@smithy/signature-v4)
 * from the request exactly as it arrived (method, path, query, signed headers, payload hash), and
 * a presigned URL must not have expired. Verified requests are forwarded unchanged; anything else
 * gets S3's 403 error XML and never reaches the bucket.
 *
 *   const s3 = await startTestS3();
 *   const proxy = await startSigV4Proxy({ target: s3.endpoint, credentials: s3.config.credentials });
 *   const store = s3.store({ endpoint: proxy.endpoint });   // URLs it signs now point at the proxy
 *   …
 *   await proxy.close();
 *
 * With S3's presigning (UNSIGNED-PAYLOAD, content-type unsigned), a presigned URL binds the method,
 * the bucket and key (the path), the expiry and the other signed headers (host) — so a URL used
 * for another key, method or host, or with an altered signature, is refused here as AWS would.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignatureV4 } from '@smithy/signature-v4';

export interface SigV4ProxyOptions {
  /** Where verified requests go (s3rver's endpoint). */
  target: string;
  /** The key pairs the proxy knows (as an S3 server knows its users' secrets). */
  credentials: { accessKeyId: string; secretAccessKey: string };
  /** Clock for expiry checks (default: the real one). */
  now?: () => Date;
  /** Tolerated clock skew for header-signed requests, seconds (AWS: 15 minutes). */
  maxSkewSeconds?: number;
}

export interface VerifiedRequest {
  method: string;
  /** Path as received, query excluded. */
  path: string;
  ok: boolean;
  /** Why a refused request was refused (S3 error code: message). */
  reason?: string;
}

export interface SigV4Proxy {
  endpoint: string;
  port: number;
  /** Every request seen, in order, with the verdict. */
  requests: VerifiedRequest[];
  close(): Promise<void>;
}

/** node:crypto as the signer's hash (SHA-256, or HMAC-SHA-256 when given a secret). */
class NodeSha256 {
  readonly #h: ReturnType<typeof createHash> | ReturnType<typeof createHmac>;
  constructor(secret?: string | ArrayBuffer | ArrayBufferView) {
    this.#h = secret === undefined ? createHash('sha256') : createHmac('sha256', toBuffer(secret));
  }
  update(data: string | ArrayBuffer | ArrayBufferView): void {
    this.#h.update(toBuffer(data));
  }
  digest(): Promise<Uint8Array> {
    return Promise.resolve(new Uint8Array(this.#h.digest()));
  }
  reset(): void {
    throw new Error('NodeSha256 cannot be reset; make a new one');
  }
}
const toBuffer = (d: string | ArrayBuffer | ArrayBufferView): Buffer =>
  typeof d === 'string'
    ? Buffer.from(d, 'utf8')
    : ArrayBuffer.isView(d)
      ? Buffer.from(d.buffer, d.byteOffset, d.byteLength)
      : Buffer.from(d);

type RefusalCode =
  'AccessDenied' | 'SignatureDoesNotMatch' | 'InvalidAccessKeyId' | 'AuthorizationQueryParametersError';
class Refused extends Error {
  readonly code: RefusalCode;
  constructor(code: RefusalCode, message: string) {
    super(message);
    this.code = code;
  }
}

const PRESIGN_PARAMS = [
  'X-Amz-Algorithm',
  'X-Amz-Credential',
  'X-Amz-Date',
  'X-Amz-Expires',
  'X-Amz-SignedHeaders',
  'X-Amz-Signature',
];

/** 20261202T131500Z → Date. */
function parseAmzDate(s: string | undefined): Date {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(s ?? '');
  if (!m) throw new Refused('AuthorizationQueryParametersError', `X-Amz-Date ${s ?? '(missing)'} is not a date`);
  return new Date(Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!));
}

const sameSignature = (a: string, b: string) =>
  a.length === b.length && timingSafeEqual(Buffer.from(a), Buffer.from(b));

export async function startSigV4Proxy(opts: SigV4ProxyOptions): Promise<SigV4Proxy> {
  const target = new URL(opts.target);
  const now = opts.now ?? (() => new Date());
  const maxSkew = (opts.maxSkewSeconds ?? 900) * 1000;
  const requests: VerifiedRequest[] = [];

  function signerFor(credential: string): { signer: SignatureV4; region: string; service: string } {
    const [accessKeyId, , region, service, terminator] = credential.split('/');
    if (accessKeyId !== opts.credentials.accessKeyId)
      throw new Refused('InvalidAccessKeyId', `The access key ${accessKeyId ?? ''} does not exist`);
    if (!region || service !== 's3' || terminator !== 'aws4_request')
      throw new Refused('AuthorizationQueryParametersError', `credential scope ${credential} is not valid`);
    const signer = new SignatureV4({
      credentials: { accessKeyId, secretAccessKey: opts.credentials.secretAccessKey },
      region,
      service,
      sha256: NodeSha256,
      uriEscapePath: false, // S3 signs the path as sent (already encoded by the client)
      applyChecksum: false,
    });
    return { signer, region, service };
  }

  /** Only the headers the client says it signed, as they arrived. */
  function signedHeaders(req: http.IncomingMessage, list: string): Record<string, string> {
    const out: Record<string, string> = {};
    for (const name of list.split(';')) {
      const v = req.headers[name];
      if (v === undefined) throw new Refused('SignatureDoesNotMatch', `signed header ${name} is missing`);
      out[name] = Array.isArray(v) ? v.join(',') : v;
    }
    return out;
  }

  async function verify(req: http.IncomingMessage, body: Buffer): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://proxy.invalid');
    const rawPath = (req.url ?? '/').split('?')[0]!;
    const q = url.searchParams;
    const authz = req.headers.authorization;
    if (q.has('X-Amz-Signature')) {
      if (q.get('X-Amz-Algorithm') !== 'AWS4-HMAC-SHA256')
        throw new Refused('AuthorizationQueryParametersError', 'X-Amz-Algorithm must be AWS4-HMAC-SHA256');
      const signingDate = parseAmzDate(q.get('X-Amz-Date') ?? undefined);
      const expiresIn = Number(q.get('X-Amz-Expires'));
      if (!Number.isInteger(expiresIn) || expiresIn < 1 || expiresIn > 604_800)
        throw new Refused('AuthorizationQueryParametersError', 'X-Amz-Expires must be 1…604800 seconds');
      if (now().getTime() > signingDate.getTime() + expiresIn * 1000)
        throw new Refused('AccessDenied', 'Request has expired');
      if (now().getTime() < signingDate.getTime() - maxSkew)
        throw new Refused('AccessDenied', 'Request is not yet valid');
      const { signer } = signerFor(q.get('X-Amz-Credential') ?? '');
      const headers = signedHeaders(req, q.get('X-Amz-SignedHeaders') ?? '');
      const query: Record<string, string | string[]> = {};
      for (const [k, v] of q) {
        if (PRESIGN_PARAMS.includes(k)) continue;
        const prev = query[k];
        query[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v];
      }
      // The payload hash travels hoisted into the query; the signer reads it from a header and
      // hoists it back under the same name (the canonical query is case-sensitive).
      const hashParam = [...q.keys()].find((k) => k.toLowerCase() === 'x-amz-content-sha256');
      if (hashParam) {
        headers[hashParam] = q.get(hashParam)!;
        delete query[hashParam];
      }
      // Signed x-amz-* headers that arrived as headers (e.g. x-amz-checksum-sha256, which S3 checks
      // against the body) stay headers: the signer would otherwise hoist them into the query.
      const unhoistableHeaders = new Set(Object.keys(headers).filter((k) => k.startsWith('x-amz-') && k !== hashParam));
      const expected = await signer.presign(
        { method: req.method ?? 'GET', protocol: 'http:', hostname: target.hostname, path: rawPath, query, headers },
        { signingDate, expiresIn, unhoistableHeaders },
      );
      const signed = String(expected.query?.['X-Amz-SignedHeaders'] ?? '');
      if (signed !== q.get('X-Amz-SignedHeaders'))
        throw new Refused('SignatureDoesNotMatch', `signed headers ${q.get('X-Amz-SignedHeaders')} ≠ ${signed}`);
      if (!sameSignature(String(expected.query?.['X-Amz-Signature'] ?? ''), q.get('X-Amz-Signature') ?? ''))
        throw new Refused(
          'SignatureDoesNotMatch',
          'The request signature we calculated does not match the signature you provided',
        );
      return;
    }
    if (typeof authz === 'string' && authz.startsWith('AWS4-HMAC-SHA256 ')) {
      const parts = Object.fromEntries(
        authz
          .slice('AWS4-HMAC-SHA256 '.length)
          .split(',')
          .map((p) => p.trim().split('=') as [string, string]),
      );
      const signingDate = parseAmzDate(String(req.headers['x-amz-date'] ?? ''));
      if (Math.abs(now().getTime() - signingDate.getTime()) > maxSkew)
        throw new Refused('AccessDenied', 'RequestTimeTooSkewed');
      const { signer } = signerFor(parts.Credential ?? '');
      const headers = signedHeaders(req, parts.SignedHeaders ?? '');
      const declared = headers['x-amz-content-sha256'];
      if (!declared) throw new Refused('SignatureDoesNotMatch', 'x-amz-content-sha256 must be signed');
      if (/^[0-9a-f]{64}$/.test(declared) && createHash('sha256').update(body).digest('hex') !== declared)
        throw new Refused('SignatureDoesNotMatch', 'x-amz-content-sha256 does not match the body');
      const query: Record<string, string | string[]> = {};
      for (const [k, v] of url.searchParams) {
        const prev = query[k];
        query[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v];
      }
      const expected = await signer.sign(
        { method: req.method ?? 'GET', protocol: 'http:', hostname: target.hostname, path: rawPath, query, headers },
        { signingDate },
      );
      const got = /Signature=([0-9a-f]+)/.exec(String(expected.headers.authorization ?? ''))?.[1] ?? '';
      if (!sameSignature(got, parts.Signature ?? ''))
        throw new Refused(
          'SignatureDoesNotMatch',
          'The request signature we calculated does not match the signature you provided',
        );
      return;
    }
    throw new Refused('AccessDenied', 'Anonymous access is forbidden: no SigV4 signature');
  }

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const path = (req.url ?? '/').split('?')[0]!;
      verify(req, body).then(
        () => {
          requests.push({ method: req.method ?? '', path, ok: true });
          const upstream = http.request(
            {
              host: target.hostname,
              port: target.port,
              method: req.method,
              path: req.url,
              headers: { ...req.headers, host: target.host },
            },
            (up) => {
              res.writeHead(up.statusCode ?? 502, up.headers);
              up.pipe(res);
            },
          );
          upstream.on('error', (e) => {
            res.writeHead(502).end(String(e));
          });
          upstream.end(body);
        },
        (e: unknown) => {
          const r =
            e instanceof Refused ? e : new Refused('SignatureDoesNotMatch', e instanceof Error ? e.message : String(e));
          requests.push({ method: req.method ?? '', path, ok: false, reason: `${r.code}: ${r.message}` });
          const xml = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${r.code}</Code><Message>${escapeXml(r.message)}</Message></Error>`;
          res.writeHead(403, { 'content-type': 'application/xml' }).end(req.method === 'HEAD' ? undefined : xml);
        },
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    port,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

const escapeXml = (s: string) => s.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
