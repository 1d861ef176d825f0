/**
 * WebSocket `/v1/events`. The token arrives in the first message `{ type: 'auth', token }` or in
 * the subprotocol header (`Sec-WebSocket-Protocol: atelier.v1, bearer.<token>`) — never in the
 * URL, where proxies and logs would keep it. Until authenticated the socket gets nothing; a bad
 * token closes it with 4401 and the error code as the reason; a limit (sockets per IP or per user,
 * failed authentications per IP: api/limits.ts) closes it with 4429 RATE_LIMITED.
 */
import { AppError, CloudEventClientMessage, type CloudEvent } from '@atelier/common';
import type { FastifyPluginAsync } from 'fastify';
import type { WebSocket } from 'ws';

export const EVENTS_PROTOCOL = 'atelier.v1';

const eventRoutes: FastifyPluginAsync = async (app) => {
  const { verifier, provisioner, events, metrics, limits } = app;

  app.get(
    '/v1/events',
    {
      websocket: true,
      // The per-IP request limit applies to the upgrade like any request: a reconnect loop is
      // refused with 429 before it costs a token verify.
      config: { auth: false },
      schema: { tags: ['events'], summary: 'Per-user event stream (WebSocket)', hide: false },
    },
    (socket: WebSocket, req) => {
      // Sockets per IP are capped before anything else is done for this one.
      const releaseIp = limits.openSocket(req.ip);
      if (!releaseIp) {
        socket.close(4429, 'RATE_LIMITED');
        return;
      }
      let releaseUser: (() => void) | null = null;
      let unsubscribe: (() => void) | null = null;
      let authed = false;
      // One authentication per socket: a second `auth` frame (or a frame next to the bearer
      // subprotocol) is ignored, never a second verify, subscription or `ready`.
      let authStarted = false;
      metrics.sockets.inc();
      const send = (event: CloudEvent) => {
        if (socket.readyState === socket.OPEN) socket.send(JSON.stringify(event));
      };
      const fail = (code: string) => {
        if (socket.readyState === socket.OPEN) socket.close(4401, code);
      };
      const timer = setTimeout(() => fail('AUTH_REQUIRED'), limits.config.socketAuthTimeoutMs);

      const authenticate = async (token: string) => {
        if (authStarted) return;
        authStarted = true;
        try {
          limits.beforeAuthentication(req.ip);
          let v: { sub: string };
          try {
            v = await verifier.verify(token);
          } catch (e) {
            limits.authenticationFailed(req.ip);
            throw e;
          }
          if (socket.readyState !== socket.OPEN) return;
          releaseUser = limits.authenticateSocket(v.sub);
          if (!releaseUser) {
            socket.close(4429, 'RATE_LIMITED');
            return;
          }
          await provisioner.ensure(v.sub, token);
          if (socket.readyState !== socket.OPEN) return;
          authed = true;
          clearTimeout(timer);
          unsubscribe = events.subscribe(v.sub, send);
          send({ type: 'ready', userId: v.sub });
        } catch (e) {
          const code = AppError.is(e) ? e.code : 'AUTH_INVALID_TOKEN';
          if (code === 'RATE_LIMITED') {
            if (socket.readyState === socket.OPEN) socket.close(4429, code);
          } else fail(code);
        }
      };

      socket.on('message', (data) => {
        let msg: unknown;
        try {
          msg = JSON.parse(String(data));
        } catch {
          return fail('BAD_REQUEST');
        }
        const parsed = CloudEventClientMessage.safeParse(msg);
        if (!parsed.success) return authed ? undefined : fail('AUTH_REQUIRED');
        // Nothing but `auth` is accepted before authentication.
        if (!authed && parsed.data.type !== 'auth') return fail('AUTH_REQUIRED');
        if (parsed.data.type === 'auth') void authenticate(parsed.data.token);
        // ping: keeps intermediaries from idling the connection out; nothing to answer.
      });
      socket.on('close', () => {
        clearTimeout(timer);
        unsubscribe?.();
        releaseUser?.();
        releaseIp();
        metrics.sockets.dec();
      });

      const offered = String(req.headers['sec-websocket-protocol'] ?? '')
        .split(',')
        .map((s) => s.trim());
      const bearer = offered.find((p) => p.startsWith('bearer.'));
      if (bearer) void authenticate(bearer.slice('bearer.'.length));
    },
  );
};
export default eventRoutes;
