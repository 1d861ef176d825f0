// Compiled by test/ipc-contract-types.test.ts: the control case, which must compile.
import type { IpcHandlers } from '../../common/src/ipc/contract.ts';

declare const complete: IpcHandlers;
const { ...all } = complete;
export const handlers: IpcHandlers = all;
