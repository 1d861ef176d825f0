/**
 * `events`: the per-process LISTEN hub (`app.events`) and the WebSocket server the /v1/events
 * route runs on. The hub is owned by the caller (it is started before the app and stopped after).
 */
import websocket from '@fastify/websocket';
import fp from 'fastify-plugin';
import type { EventHub } from '../../events/hub.ts';
import { EVENTS_PROTOCOL } from '../../events/route.ts';

declare module 'fastify' {
  interface FastifyInstance {
    events: EventHub;
  }
}

export default fp<{ events: EventHub; maxPayload: number }>(
  async (app, opts) => {
    app.decorate('events', opts.events);
    await app.register(websocket, {
      options: {
        maxPayload: opts.maxPayload,
        // Answer with our protocol when offered; the bearer.<token> entry is never echoed back.
        handleProtocols: (protocols) => (protocols.has(EVENTS_PROTOCOL) ? EVENTS_PROTOCOL : false),
      },
    });
  },
  { name: 'events', fastify: '5.x' },
);
