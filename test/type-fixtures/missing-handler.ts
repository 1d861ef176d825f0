// Compiled by test/ipc-contract-types.test.ts: a handler set missing 'jobs:cancel' must not compile.
import type { IpcHandlers } from '../../common/src/ipc/contract.ts';

declare const complete: IpcHandlers;
const { 'jobs:cancel': _removed, ...rest } = complete;
export const handlers: IpcHandlers = rest;
