import {
  AppError,
  type IpcChannel,
  type IpcEventName,
  type IpcEventPayload,
  type IpcInput,
  type IpcOutput,
} from '@atelier/common';
import type { Api } from '../bridge.ts';

type Handler<C extends IpcChannel> = (input: IpcInput<C>) => IpcOutput<C> | Promise<IpcOutput<C>>;

/**
 * A test double of the bridge port for store tests: channels answer from handlers the test
 * gives, every call is recorded, and events are emitted by hand. (The real bridge is exercised
 * end to end by test/e2e against the real host.)
 */
export class InMemoryApi implements Api {
  readonly calls: { channel: IpcChannel; input: unknown }[] = [];
  private readonly handlers = new Map<IpcChannel, Handler<IpcChannel>>();
  private readonly listeners = new Map<string, Set<(p: unknown) => void>>();

  handle<C extends IpcChannel>(channel: C, handler: Handler<C>): this {
    this.handlers.set(channel, handler as unknown as Handler<IpcChannel>);
    return this;
  }

  async invoke<C extends IpcChannel>(channel: C, input: IpcInput<C>): Promise<IpcOutput<C>> {
    this.calls.push({ channel, input });
    const h = this.handlers.get(channel);
    if (!h) throw new AppError('IPC_UNKNOWN_CHANNEL', `no handler for ${channel}`);
    return (await h(input as IpcInput<IpcChannel>)) as IpcOutput<C>;
  }

  on<E extends IpcEventName>(event: E, listener: (payload: IpcEventPayload<E>) => void): () => void {
    let set = this.listeners.get(event);
    if (!set) this.listeners.set(event, (set = new Set()));
    const l = listener as (p: unknown) => void;
    set.add(l);
    return () => set.delete(l);
  }

  emit<E extends IpcEventName>(event: E, payload: IpcEventPayload<E>): void {
    for (const l of this.listeners.get(event) ?? []) l(payload);
  }

  callsTo(channel: IpcChannel): unknown[] {
    return this.calls.filter((c) => c.channel === channel).map((c) => c.input);
  }
}
