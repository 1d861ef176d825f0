/** `metrics`: the instance's Prometheus registry and counters (`app.metrics`), and the per-request timing hook. */
import fp from 'fastify-plugin';
import { createMetrics, instrument, type Metrics } from '../metrics.ts';

declare module 'fastify' {
  interface FastifyInstance {
    metrics: Metrics;
  }
}

export default fp(
  async (app) => {
    const metrics = createMetrics();
    app.decorate('metrics', metrics);
    instrument(app, metrics);
  },
  { name: 'metrics', fastify: '5.x' },
);
