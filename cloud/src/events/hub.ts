import pg from 'pg';
import { CloudEvent } from '@atelier/common';
import { EVENTS_CHANNEL, type EventEnvelope } from './publish.ts';

export type Listener = (event: CloudEvent) => void;

/**
 * One LISTEN connection per API process; events go to the sockets of the user they name.
 * Reconnects if the connection drops. Events committed while it was down are not delivered
 * (NOTIFY is not stored), so after every reconnect each open socket gets `resync`, and clients
 * re-read their state as they do after `ready`.
 */
export class EventHub {
  readonly #url: string;
  readonly #listeners = new Map<string, Set<Listener>>();
  readonly #log: (msg: string, err?: unknown) => void;
  #client: pg.Client | null = null;
  #stopped = false;
  #retry: NodeJS.Timeout | null = null;
  #connectedBefore = false;
  #reconnects = 0;

  constructor(connectionString: string, log: (msg: string, err?: unknown) => void = () => {}) {
    this.#url = connectionString;
    this.#log = log;
  }

  async start(): Promise<void> {
    this.#stopped = false;
    await this.#connect();
  }

  async #connect(): Promise<void> {
    const client = new pg.Client({ connectionString: this.#url, application_name: 'atelier-events' });
    client.on('notification', (msg) => {
      if (msg.channel !== EVENTS_CHANNEL || !msg.payload) return;
      this.#dispatch(msg.payload);
    });
    client.on('error', (err) => {
      this.#log('event listener connection lost', err);
      this.#scheduleReconnect();
    });
    client.on('end', () => this.#scheduleReconnect());
    await client.connect();
    await client.query(`LISTEN ${EVENTS_CHANNEL}`);
    this.#client = client;
    if (this.#connectedBefore) {
      this.#reconnects++;
      this.#broadcast({ type: 'resync' });
    }
    this.#connectedBefore = true;
  }

  /** Sends one event to every open socket of every user (after a listener reconnect). */
  #broadcast(event: CloudEvent): void {
    for (const set of this.#listeners.values()) for (const l of set) l(event);
  }

  /** How many times the LISTEN connection was re-established (metrics, tests). */
  get reconnects(): number {
    return this.#reconnects;
  }

  #scheduleReconnect(): void {
    if (this.#stopped || this.#retry) return;
    this.#client = null;
    this.#retry = setTimeout(() => {
      this.#retry = null;
      this.#connect().catch((err) => {
        this.#log('event listener reconnect failed', err);
        this.#scheduleReconnect();
      });
    }, 1000);
    this.#retry.unref();
  }

  #dispatch(payload: string): void {
    let env: EventEnvelope;
    try {
      env = JSON.parse(payload) as EventEnvelope;
    } catch {
      return;
    }
    const set = this.#listeners.get(env.u);
    if (!set) return;
    const parsed = CloudEvent.safeParse(env.e);
    if (!parsed.success) return this.#log(`dropped malformed event ${String((env.e as { type?: string })?.type)}`);
    for (const l of set) l(parsed.data);
  }

  subscribe(userId: string, listener: Listener): () => void {
    let set = this.#listeners.get(userId);
    if (!set) this.#listeners.set(userId, (set = new Set()));
    set.add(listener);
    return () => {
      set.delete(listener);
      if (set.size === 0) this.#listeners.delete(userId);
    };
  }

  get connections(): number {
    let n = 0;
    for (const s of this.#listeners.values()) n += s.size;
    return n;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#retry) clearTimeout(this.#retry);
    const c = this.#client;
    this.#client = null;
    if (c) await c.end().catch(() => undefined);
  }
}
