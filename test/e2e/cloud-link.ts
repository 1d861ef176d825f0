/**
 * One browser host's network path to the cloud, which an e2e step can cut and restore: a real
 * offline, not the Pause button. Test-only; the product knows nothing of it.
 *
 * Two doors, both on loopback and both cut together:
 * - a TCP relay in front of the API, whose URL replaces `apiUrl` in that host's own copy of the
 *   stack file. It carries the API calls and the `/v1/events` WebSocket (the `ws` client does not
 *   use an HTTP proxy);
 * - an HTTP proxy that answers CONNECT, given to the host as HTTP_PROXY with NODE_USE_ENV_PROXY=1,
 *   so Node's own fetch tunnels everything else through it: the presigned S3 PUTs and GETs (whose
 *   host the API decides, so no URL of ours could redirect them) and Cognito's token refresh.
 *
 * Cut = every open connection closed at once and new ones closed as soon as they are accepted, as
 * when the cable is pulled or the Wi-Fi drops: the host sees "fetch failed" / ECONNRESET.
 */
import net from 'node:net';

export interface CloudLink {
  /** The API's URL as this host must be told it (the relay). */
  apiUrl: string;
  /** The environment that sends the host's other cloud traffic through the proxy. */
  env: Record<string, string>;
  /** Connections made through the link so far (a check that the traffic really goes through it). */
  readonly connections: number;
  readonly isCut: boolean;
  cut(): void;
  restore(): void;
  close(): Promise<void>;
}

function listen(server: net.Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port));
  });
}

export async function startCloudLink(apiUrl: string): Promise<CloudLink> {
  const api = new URL(apiUrl);
  const apiPort = Number(api.port || (api.protocol === 'https:' ? 443 : 80));
  const open = new Set<net.Socket>();
  let cut = false;
  let connections = 0;

  /** Pipes two sockets both ways; either side ending or failing closes the other. */
  const splice = (a: net.Socket, b: net.Socket) => {
    for (const s of [a, b]) {
      open.add(s);
      s.once('close', () => open.delete(s));
      s.on('error', () => undefined); // a reset is how a cut looks; the other side is closed below
    }
    a.once('close', () => b.destroy());
    b.once('close', () => a.destroy());
    a.pipe(b);
    b.pipe(a);
  };
  const admit = (s: net.Socket): boolean => {
    if (cut) {
      s.resetAndDestroy();
      return false;
    }
    connections++;
    // Tracked from the start, so a cut also closes a tunnel still reading its CONNECT line.
    open.add(s);
    s.once('close', () => open.delete(s));
    return true;
  };

  const relay = net.createServer((client) => {
    if (!admit(client)) return;
    splice(client, net.connect(apiPort, api.hostname));
  });

  // A minimal forward proxy: CONNECT only, which is what Node's fetch (undici) sends for every
  // target, http or https. Anything else is refused plainly, so a client that sent plain-HTTP
  // proxy requests would fail the test rather than slip past the cut.
  const proxy = net.createServer((client) => {
    if (!admit(client)) return;
    client.on('error', () => undefined);
    let head = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) {
        if (head.length > 16_384) client.destroy();
        return;
      }
      client.off('data', onData);
      const m = /^CONNECT ([^\s:]+|\[[^\]]+\]):(\d+) HTTP\/1\.[01]\r\n/.exec(head.toString('latin1'));
      if (!m) {
        client.end('HTTP/1.1 405 Method Not Allowed\r\ncontent-length: 0\r\nconnection: close\r\n\r\n');
        return;
      }
      const upstream = net.connect(Number(m[2]), m[1]!.replace(/^\[|\]$/g, ''), () => {
        client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
        const rest = head.subarray(end + 4);
        if (rest.length) upstream.write(rest);
        splice(client, upstream);
      });
      upstream.once('error', () => {
        if (!client.destroyed) client.end('HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\nconnection: close\r\n\r\n');
      });
    };
    client.on('data', onData);
  });

  const relayPort = await listen(relay);
  const proxyPort = await listen(proxy);
  const relayUrl = new URL(apiUrl);
  relayUrl.hostname = '127.0.0.1';
  relayUrl.port = String(relayPort);
  const proxyUrl = `http://127.0.0.1:${proxyPort}`;

  return {
    apiUrl: relayUrl.toString().replace(/\/$/, ''),
    env: {
      NODE_USE_ENV_PROXY: '1',
      HTTP_PROXY: proxyUrl,
      HTTPS_PROXY: proxyUrl,
      http_proxy: proxyUrl,
      https_proxy: proxyUrl,
      // Nothing bypasses the proxy, loopback included: the whole local cloud is on loopback.
      NO_PROXY: '',
      no_proxy: '',
    },
    get connections() {
      return connections;
    },
    get isCut() {
      return cut;
    },
    cut() {
      cut = true;
      for (const s of open) s.resetAndDestroy();
      open.clear();
    },
    restore() {
      cut = false;
    },
    async close() {
      cut = true;
      for (const s of open) s.destroy();
      await Promise.all([relay, proxy].map((srv) => new Promise((r) => srv.close(r))));
    },
  };
}
