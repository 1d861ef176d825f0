/**
 * The one IPC dispatcher, used by Electron's ipcMain registration and by the browser host's
 * bridge alike: check the sender, look the channel up in the contract, validate the input with
 * its schema, call the handler, and answer with a result envelope (errors travel as AppError JSON
 * because Electron only carries `message` across ipcMain.handle).
 */
import {
  AppError,
  ipcContract,
  validationError,
  type IpcChannel,
  type IpcEnvelope,
  type IpcHandlers,
} from '@atelier/common';

export interface IpcRequest {
  channel: unknown;
  input: unknown;
  /** Whether the caller is the app's own top-level frame (Electron) or an authenticated bridge client. */
  senderAllowed: boolean;
}

export function isIpcChannel(channel: unknown): channel is IpcChannel {
  return typeof channel === 'string' && Object.hasOwn(ipcContract, channel);
}

export function errorEnvelope(err: unknown, onUnexpected?: (err: unknown) => void): IpcEnvelope {
  if (err instanceof AppError) return { ok: false, error: err.toJSON() };
  onUnexpected?.(err);
  // Unexpected failures never leak their message (paths, SQL) to the page.
  return { ok: false, error: new AppError('INTERNAL', 'internal error').toJSON() };
}

export async function dispatchIpc(
  handlers: IpcHandlers,
  req: IpcRequest,
  onUnexpected?: (err: unknown, channel: string) => void,
): Promise<IpcEnvelope> {
  if (!req.senderAllowed)
    return errorEnvelope(new AppError('IPC_FORBIDDEN_SENDER', 'IPC call from a frame that is not the app'));
  if (!isIpcChannel(req.channel))
    return errorEnvelope(
      new AppError('IPC_UNKNOWN_CHANNEL', `unknown IPC channel ${JSON.stringify(String(req.channel)).slice(0, 100)}`),
    );
  const channel = req.channel;
  const parsed = ipcContract[channel].input.safeParse(req.input ?? {});
  if (!parsed.success) return errorEnvelope(validationError(parsed.error));
  try {
    const handler = handlers[channel] as (input: unknown) => Promise<unknown>;
    const value = await handler(parsed.data);
    return { ok: true, value: value === undefined ? null : value };
  } catch (e) {
    return errorEnvelope(e, (err) => onUnexpected?.(err, channel));
  }
}
