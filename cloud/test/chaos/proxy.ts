/**
 * A small round-robin TCP load balancer for the chaos run, standing where the ALB stands in
 * production. It works at the connection level, so HTTP keep-alive and WebSocket upgrades pass
 * through untouched. Like a load balancer it
 *  - stops sending new connections to a target being deregistered (`drain`) while the
 *    connections it already carries finish;
 *  - fails a connection over to the next target when one refuses it (a killed or not yet
 *    started replica), as health checks would, and counts that as a failover;
 *  - cuts a client's connection when its target's connection breaks (what a client of a killed
 *    replica sees through any load balancer).
 */
import net from 'node:net';

export interface ProxyTarget {
  name: string;
  port: number;
  /** False while deregistered: no new connections. */
  accepting: boolean;
}

export interface ProxyStats {
  connections: number;
  /** Connections that a target refused and another target took. */
  failovers: number;
  /** Connections closed because no target took them. */
  dropped: number;
}

export class RoundRobinProxy {
  readonly targets: ProxyTarget[] = [];
  readonly stats: ProxyStats = { connections: 0, failovers: 0, dropped: 0 };
  readonly #server: net.Server;
  readonly #open = new Set<net.Socket>();
  #next = 0;

  constructor() {
    this.#server = net.createServer((client) => this.#accept(client));
  }

  async listen(): Promise<string> {
    await new Promise<void>((r) => this.#server.listen(0, '127.0.0.1', r));
    return `http://127.0.0.1:${(this.#server.address() as net.AddressInfo).port}`;
  }

  add(name: string, port: number): void {
    this.targets.push({ name, port, accepting: true });
  }

  /** Deregisters (false) or registers (true) a target for new connections. */
  setAccepting(name: string, accepting: boolean): void {
    const t = this.targets.find((x) => x.name === name);
    if (!t) throw new Error(`no proxy target ${name}`);
    t.accepting = accepting;
  }

  #pick(exclude: Set<ProxyTarget>): ProxyTarget | null {
    for (let i = 0; i < this.targets.length; i++) {
      const t = this.targets[(this.#next + i) % this.targets.length]!;
      if (t.accepting && !exclude.has(t)) {
        this.#next = (this.#next + i + 1) % this.targets.length;
        return t;
      }
    }
    return null;
  }

  #accept(client: net.Socket): void {
    this.stats.connections++;
    this.#open.add(client);
    client.on('close', () => this.#open.delete(client));
    client.on('error', () => undefined);
    client.pause();
    const tried = new Set<ProxyTarget>();
    const attempt = () => {
      const target = this.#pick(tried);
      if (!target) {
        this.stats.dropped++;
        client.destroy();
        return;
      }
      tried.add(target);
      const upstream = net.connect(target.port, '127.0.0.1');
      let connected = false;
      upstream.once('connect', () => {
        connected = true;
        this.#open.add(upstream);
        client.pipe(upstream);
        upstream.pipe(client);
        client.resume();
      });
      upstream.on('error', () => {
        if (connected || client.destroyed) return;
        this.stats.failovers++;
        attempt();
      });
      upstream.on('close', (hadError) => {
        this.#open.delete(upstream);
        // A clean end was passed on by pipe() (after the bytes before it); a broken one cuts.
        if (connected && hadError) client.destroy();
      });
      client.on('close', () => upstream.destroy());
    };
    attempt();
  }

  async close(): Promise<void> {
    for (const s of this.#open) s.destroy();
    await new Promise<void>((r) => this.#server.close(() => r()));
  }
}
