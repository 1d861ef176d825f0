import type { FastifyInstance } from 'fastify';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/** Prometheus metrics for one app instance. Labels are route templates and codes — never user ids. */
export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const requests = new Counter({
    name: 'atelier_http_requests_total',
    help: 'HTTP requests by route template and status',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'atelier_http_request_duration_seconds',
    help: 'HTTP request duration',
    labelNames: ['method', 'route'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  });
  const errors = new Counter({
    name: 'atelier_api_errors_total',
    help: 'Error responses by code',
    labelNames: ['code'] as const,
    registers: [registry],
  });
  const sockets = new Gauge({ name: 'atelier_event_sockets', help: 'Open /v1/events sockets', registers: [registry] });
  const generations = new Counter({
    name: 'atelier_generations_submitted_total',
    help: 'Generations accepted, by plan',
    labelNames: ['plan'] as const,
    registers: [registry],
  });
  return { registry, requests, duration, errors, sockets, generations };
}
export type Metrics = ReturnType<typeof createMetrics>;

export function instrument(app: FastifyInstance, m: Metrics): void {
  app.addHook('onResponse', async (req, reply) => {
    const route = req.routeOptions.url ?? 'unmatched';
    m.requests.inc({ method: req.method, route, status: String(reply.statusCode) });
    m.duration.observe({ method: req.method, route }, reply.elapsedTime / 1000);
  });
}
