/**
 * The desktop's one event stream: services emit typed IPC events, the shells (Electron's IPC,
 * the browser host's bridge) forward every event to the renderer through `onAny`.
 */
import { EventEmitter } from 'node:events';
import type { IpcEventName, IpcEventPayload } from '@atelier/common';

export type Emit = <E extends IpcEventName>(event: E, payload: IpcEventPayload<E>) => void;

export interface DesktopEvents {
  on<E extends IpcEventName>(event: E, listener: (payload: IpcEventPayload<E>) => void): () => void;
  onAny(listener: (event: IpcEventName, payload: unknown) => void): () => void;
}

export function createEventBus(): { emit: Emit; events: DesktopEvents } {
  const emitter = new EventEmitter();
  emitter.setMaxListeners(100);
  const emit: Emit = (event, payload) => {
    emitter.emit(event, payload);
    emitter.emit('*', event, payload);
  };
  const events: DesktopEvents = {
    on(event, listener) {
      emitter.on(event, listener as (p: unknown) => void);
      return () => emitter.off(event, listener as (p: unknown) => void);
    },
    onAny(listener) {
      emitter.on('*', listener);
      return () => emitter.off('*', listener);
    },
  };
  return { emit, events };
}
