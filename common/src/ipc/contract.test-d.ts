import { expectTypeOf, test } from 'vitest';
import type { IpcChannel, IpcHandlers, IpcOutput } from './contract.ts';

test('every channel has a handler type whose result is the output schema', () => {
  expectTypeOf<keyof IpcHandlers>().toEqualTypeOf<IpcChannel>();
  expectTypeOf<ReturnType<IpcHandlers['jobs:cancel']>>().toEqualTypeOf<Promise<IpcOutput<'jobs:cancel'>>>();
});

test('an object missing one handler is not IpcHandlers', () => {
  type WithoutCancel = Omit<IpcHandlers, 'jobs:cancel'>;
  expectTypeOf<WithoutCancel>().not.toExtend<IpcHandlers>();
});
