/**
 * A small, bounded loopback load generator (worker thread): `connections` keep-alive clients
 * each send requests back-to-back for `durationMs`; reports completed requests and statuses.
 */
import http from 'node:http';
import { parentPort, workerData } from 'node:worker_threads';

export interface LoadSpec {
  url: string;
  method: 'GET' | 'POST';
  connections: number;
  durationMs: number;
  /** Instead of a duration: send exactly this many requests. */
  count?: number;
  /** Per request i: headers and body (the worker cycles through them). */
  requests: { headers: Record<string, string>; body?: string }[];
}
export interface LoadResult {
  completed: number;
  statuses: Record<string, number>;
  elapsedMs: number;
}

async function run(spec: LoadSpec): Promise<LoadResult> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: spec.connections });
  const url = new URL(spec.url);
  const statuses: Record<string, number> = {};
  let completed = 0;
  let next = 0;
  const start = performance.now();
  const end = start + spec.durationMs;
  const one = (i: number) =>
    new Promise<void>((resolve, reject) => {
      const r = spec.requests[i % spec.requests.length]!;
      const req = http.request(
        { host: url.hostname, port: url.port, path: url.pathname, method: spec.method, agent, headers: r.headers },
        (res) => {
          res.resume();
          res.on('end', () => {
            statuses[res.statusCode!] = (statuses[res.statusCode!] ?? 0) + 1;
            resolve();
          });
        },
      );
      req.on('error', reject);
      req.end(r.body);
    });
  await Promise.all(
    Array.from({ length: spec.connections }, async () => {
      while (spec.count !== undefined ? next < spec.count : performance.now() < end) {
        await one(next++);
        completed++;
      }
    }),
  );
  agent.destroy();
  return { completed, statuses, elapsedMs: performance.now() - start };
}

if (parentPort) {
  const result = await run(workerData as LoadSpec);
  parentPort.postMessage(result);
}
