/**
 * Which addresses a webhook may be sent to (docs/decisions/0171). Outside development every
 * address a host name resolves to must be a public unicast address: private (RFC 1918),
 * loopback, link-local (cloud metadata at 169.254.169.254), CGNAT, multicast, reserved,
 * documentation, benchmarking, IPv6 ULA/site-local, and the IPv6 forms that embed an IPv4
 * address (mapped, NAT64, 6to4) judged by that address. The check runs when an endpoint is saved
 * and again at every delivery, and the connection is pinned to the address that was checked, so a
 * DNS answer that changes between the check and the connect (rebinding) cannot redirect it.
 */
import { lookup as dnsLookup } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';
import { AppError } from '@atelier/common';

const v4 = new BlockList();
for (const [net, bits] of [
  ['0.0.0.0', 8], // "this network"
  ['10.0.0.0', 8],
  ['100.64.0.0', 10], // CGNAT
  ['127.0.0.0', 8],
  ['169.254.0.0', 16], // link-local, instance metadata
  ['172.16.0.0', 12],
  ['192.0.0.0', 24], // IETF protocol assignments
  ['192.0.2.0', 24], // TEST-NET-1
  ['192.88.99.0', 24], // 6to4 relay anycast
  ['192.168.0.0', 16],
  ['198.18.0.0', 15], // benchmarking
  ['198.51.100.0', 24], // TEST-NET-2
  ['203.0.113.0', 24], // TEST-NET-3
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved, broadcast
] as const)
  v4.addSubnet(net, bits, 'ipv4');

const v6 = new BlockList();
for (const [net, bits] of [
  ['::', 128], // unspecified
  ['::1', 128], // loopback
  ['100::', 64], // discard
  ['2001::', 23], // IETF protocol assignments (Teredo, ORCHID, …)
  ['2001:db8::', 32], // documentation
  ['fc00::', 7], // unique local
  ['fe80::', 10], // link-local
  ['fec0::', 10], // site-local (deprecated)
  ['ff00::', 8], // multicast
] as const)
  v6.addSubnet(net, bits, 'ipv6');

/** Expands an IPv6 address to its 8 groups. */
function groups(ip: string): number[] {
  let s = ip.split('%')[0]!.toLowerCase();
  const tail = /(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (tail) {
    const [a, b, c, d] = tail[1]!.split('.').map(Number) as [number, number, number, number];
    s = s.slice(0, -tail[1]!.length) + `${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, rest] = s.split('::') as [string, string | undefined];
  const h = head ? head.split(':') : [];
  const r = rest === undefined ? [] : rest ? rest.split(':') : [];
  const fill = rest === undefined ? [] : Array(8 - h.length - r.length).fill('0');
  return [...h, ...fill, ...r].map((g) => parseInt(g || '0', 16));
}

const v4From = (hi: number, lo: number) => `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;

/** The IPv4 address an IPv6 address stands for (mapped, compatible, NAT64, 6to4), if any. */
function embeddedV4(ip: string): string | null {
  const g = groups(ip);
  if (g.length !== 8) return null;
  const zeros = (n: number) => g.slice(0, n).every((x) => x === 0);
  if (zeros(5) && g[5] === 0xffff) return v4From(g[6]!, g[7]!); // ::ffff:a.b.c.d
  if (zeros(6) && (g[6]! !== 0 || g[7]! > 1)) return v4From(g[6]!, g[7]!); // ::a.b.c.d (deprecated)
  if (g[0] === 0x64 && g[1] === 0xff9b && g.slice(2, 6).every((x) => x === 0)) return v4From(g[6]!, g[7]!); // NAT64
  if (g[0] === 0x2002) return v4From(g[1]!, g[2]!); // 6to4
  return null;
}

/** True for any address a webhook must not reach outside development. */
export function isForbiddenAddress(ip: string): boolean {
  const family = isIP(ip);
  if (family === 4) return v4.check(ip, 'ipv4');
  if (family === 6) {
    const inner = embeddedV4(ip);
    if (inner !== null) return v4.check(inner, 'ipv4') || inner === '0.0.0.0';
    return v6.check(ip.split('%')[0]!, 'ipv6');
  }
  return true;
}

export interface TargetPolicy {
  allowPrivateTargets: boolean;
  requireHttps: boolean;
}

export interface ResolvedTarget {
  url: URL;
  /** The address the connection must use (checked). */
  address: string;
  family: 4 | 6;
}

export type Resolver = (host: string) => Promise<{ address: string; family: number }[]>;
const systemResolver: Resolver = (host) => dnsLookup(host, { all: true, verbatim: true });

/** Checks a URL's form (no DNS): scheme, credentials, host. Throws WEBHOOK_URL_INVALID. */
export function checkUrlShape(raw: string, policy: TargetPolicy): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new AppError('WEBHOOK_URL_INVALID', 'not a URL');
  }
  const https = url.protocol === 'https:';
  if (!https && url.protocol !== 'http:')
    throw new AppError('WEBHOOK_URL_INVALID', `scheme ${url.protocol} is not http(s)`);
  if (!https && (policy.requireHttps || !policy.allowPrivateTargets))
    throw new AppError('WEBHOOK_URL_INVALID', 'webhook URLs must use https', {
      userMessage: 'Webhook URLs must start with https://. Put your receiver behind TLS and try again.',
    });
  if (url.username || url.password)
    throw new AppError('WEBHOOK_URL_INVALID', 'credentials in the URL', {
      userMessage: 'Remove the user name and password from the URL; verify deliveries by their signature instead.',
    });
  if (!url.hostname) throw new AppError('WEBHOOK_URL_INVALID', 'no host');
  url.hash = '';
  return url;
}

/**
 * Resolves the URL's host and checks every address; returns the one to connect to. Throws
 * WEBHOOK_URL_INVALID (shape, or a name that does not resolve) or WEBHOOK_TARGET_FORBIDDEN.
 */
export async function resolveTarget(
  raw: string,
  policy: TargetPolicy,
  resolve: Resolver = systemResolver,
): Promise<ResolvedTarget> {
  const url = checkUrlShape(raw, policy);
  const host = url.hostname.replace(/^\[|\]$/g, '');
  let addresses: { address: string; family: number }[];
  if (isIP(host)) addresses = [{ address: host, family: isIP(host) }];
  else {
    try {
      addresses = await resolve(host);
    } catch (e) {
      throw new AppError('WEBHOOK_URL_INVALID', `${host} does not resolve`, {
        userMessage: `The host ${host} could not be found. Check the URL.`,
        cause: e,
      });
    }
  }
  if (addresses.length === 0) throw new AppError('WEBHOOK_URL_INVALID', `${host} has no address`);
  // Every answer must be public: a name with one public and one private address could be made to
  // connect to the private one by whoever controls its DNS.
  if (!policy.allowPrivateTargets) {
    const bad = addresses.find((a) => isForbiddenAddress(a.address));
    if (bad)
      throw new AppError('WEBHOOK_TARGET_FORBIDDEN', `${host} resolves to a non-public address`, {
        details: { host },
      });
  }
  const first = addresses[0]!;
  return { url, address: first.address, family: first.family === 6 ? 6 : 4 };
}
