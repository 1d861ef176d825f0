// lint-as: common/src/bad.ts
// expect: common/ is pure TypeScript
import { readFileSync } from 'node:fs';
export const x = readFileSync;
