// Compiled by test/ipc-contract-types.test.ts: a channel without an output schema must not compile.
import { z } from 'zod';

export const contract = {
  'jobs:submit': { input: z.object({}) },
} as const satisfies Record<`${string}:${string}`, { input: z.ZodType; output: z.ZodType }>;
