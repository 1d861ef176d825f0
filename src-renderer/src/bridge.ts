/**
 * The renderer's only way out: the IPC contract. In Electron the preload exposes
 * `window.atelier`; in a browser the host serves the UI at `http://127.0.0.1:PORT/#token=…` and
 * implements the same bridge over a WebSocket on the same origin (`/bridge`).
 */
import {
  AppError,
  IpcEnvelope,
  ipcContract,
  ipcEvents,
  type AtelierBridge,
  type IpcChannel,
  type IpcEventName,
  type IpcEventPayload,
  type IpcInput,
  type IpcOutput,
} from '@atelier/common';

export type ConnectionState = 'connecting' | 'open' | 'closed';

/** What the stores see: typed calls that throw AppError, and typed events. */
export interface Api {
  invoke<C extends IpcChannel>(channel: C, input: IpcInput<C>): Promise<IpcOutput<C>>;
  on<E extends IpcEventName>(event: E, listener: (payload: IpcEventPayload<E>) => void): () => void;
}

/** Turns an envelope into the channel's output or a thrown AppError; outputs are checked against the contract. */
export function unwrapEnvelope<C extends IpcChannel>(channel: C, raw: unknown): IpcOutput<C> {
  const envelope = IpcEnvelope.safeParse(raw);
  if (!envelope.success) throw new AppError('INTERNAL', `Malformed reply on ${channel}`);
  if (!envelope.data.ok) throw AppError.fromJSON(envelope.data.error);
  const parsed = ipcContract[channel].output.safeParse(envelope.data.value);
  if (!parsed.success)
    throw new AppError('INTERNAL', `Reply on ${channel} does not match the contract: ${parsed.error.message}`);
  return parsed.data as IpcOutput<C>;
}

export function createApi(bridge: AtelierBridge): Api {
  return {
    async invoke(channel, input) {
      let raw: unknown;
      try {
        raw = await bridge.invoke(channel, input);
      } catch (e) {
        throw e instanceof AppError ? e : new AppError('SERVICE_UNAVAILABLE', (e as Error)?.message ?? String(e));
      }
      return unwrapEnvelope(channel, raw);
    },
    on(event, listener) {
      return bridge.on(event, (payload) => {
        const parsed = ipcEvents[event].safeParse(payload);
        // A malformed event is a bug on the other side; dropping it keeps the UI consistent.
        if (parsed.success) listener(parsed.data as IpcEventPayload<typeof event>);
        else console.warn(`Dropped malformed ${event} event`, parsed.error);
      });
    },
  };
}

/** Backoff for reconnects: 250 ms doubling to 5 s. */
export function reconnectDelay(attempt: number): number {
  return Math.min(5000, 250 * 2 ** Math.min(attempt, 5));
}

/** Reads the bridge token from `#token=…` (and forgets it from the address bar), falling back to this tab's session. */
export function takeToken(location: Location, storage: Storage | null): string | null {
  const match = /(?:^#|&)token=([^&]+)/.exec(location.hash);
  if (match) {
    const token = decodeURIComponent(match[1]!);
    storage?.setItem('atelier.bridgeToken', token);
    return token;
  }
  return storage?.getItem('atelier.bridgeToken') ?? null;
}

type ServerMessage =
  | { type: 'result'; id: number; envelope: unknown }
  | { type: 'event'; name: string; payload: unknown }
  | { type: string; [k: string]: unknown };

export interface WebSocketBridge extends AtelierBridge {
  readonly state: ConnectionState;
  onState(listener: (state: ConnectionState) => void): () => void;
  close(): void;
}

/**
 * The browser host's bridge: `{type:'hello', token}` first, then `{id, type:'invoke', channel, input}`
 * answered by `{id, type:'result', envelope}`; the host pushes `{type:'event', name, payload}`.
 * Reconnects with backoff; calls made while disconnected wait for the connection, calls in flight
 * when it drops fail with SERVICE_UNAVAILABLE (they may or may not have run).
 */
export function createWebSocketBridge(url: string, token: string): WebSocketBridge {
  let socket: WebSocket | null = null;
  let state: ConnectionState = 'connecting';
  let attempt = 0;
  let closedByUs = false;
  let nextId = 1;
  const pending = new Map<number, { resolve: (e: IpcEnvelope) => void; reject: (e: unknown) => void }>();
  const outbox: string[] = [];
  const listeners = new Map<string, Set<(payload: unknown) => void>>();
  const stateListeners = new Set<(s: ConnectionState) => void>();

  const setState = (s: ConnectionState) => {
    if (s === state) return;
    state = s;
    for (const l of stateListeners) l(s);
  };

  function connect(): void {
    setState('connecting');
    const ws = new WebSocket(url);
    socket = ws;
    ws.onopen = () => {
      attempt = 0;
      ws.send(JSON.stringify({ type: 'hello', token }));
      for (const msg of outbox.splice(0)) ws.send(msg);
      setState('open');
    };
    ws.onmessage = (ev) => {
      let msg: ServerMessage;
      try {
        msg = JSON.parse(String(ev.data)) as ServerMessage;
      } catch {
        return;
      }
      if (msg.type === 'result' && typeof msg.id === 'number') {
        const p = pending.get(msg.id);
        if (p) {
          pending.delete(msg.id);
          p.resolve(msg.envelope as IpcEnvelope);
        }
      } else if (msg.type === 'event' && typeof msg.name === 'string') {
        for (const l of listeners.get(msg.name) ?? []) l(msg.payload);
      }
    };
    ws.onclose = () => {
      if (socket !== ws) return;
      socket = null;
      for (const [id, p] of pending) {
        pending.delete(id);
        p.reject(new AppError('SERVICE_UNAVAILABLE', 'The connection to the app was lost', { retryable: true }));
      }
      setState('closed');
      if (!closedByUs) setTimeout(connect, reconnectDelay(attempt++));
    };
  }
  connect();

  return {
    get state() {
      return state;
    },
    invoke(channel, input) {
      const id = nextId++;
      const msg = JSON.stringify({ id, type: 'invoke', channel, input });
      return new Promise<IpcEnvelope>((resolve, reject) => {
        pending.set(id, { resolve, reject });
        if (socket && socket.readyState === WebSocket.OPEN) socket.send(msg);
        else outbox.push(msg);
      });
    },
    on(event, listener) {
      let set = listeners.get(event);
      if (!set) listeners.set(event, (set = new Set()));
      const l = listener as (payload: unknown) => void;
      set.add(l);
      return () => set.delete(l);
    },
    onState(listener) {
      stateListeners.add(listener);
      return () => stateListeners.delete(listener);
    },
    close() {
      closedByUs = true;
      socket?.close();
    },
  };
}

declare global {
  interface Window {
    atelier?: AtelierBridge;
  }
}

/** window.atelier in Electron, otherwise the host's WebSocket bridge; null when neither is available. */
export function pickBridge(): { bridge: AtelierBridge; ws: WebSocketBridge | null } | null {
  if (window.atelier) return { bridge: window.atelier, ws: null };
  let storage: Storage | null;
  try {
    storage = window.sessionStorage;
  } catch {
    // Storage can be blocked; the token from the address still works for this page load.
    storage = null;
  }
  const token = takeToken(window.location, storage);
  if (!token) return null;
  if (window.location.hash.includes('token='))
    history.replaceState(null, '', window.location.pathname + window.location.search);
  const proto = window.location.protocol === 'https:' ? 'wss:' : 'ws:';
  const ws = createWebSocketBridge(`${proto}//${window.location.host}/bridge`, token);
  return { bridge: ws, ws };
}
