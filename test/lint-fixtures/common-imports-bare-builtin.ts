// lint-as: common/src/bad.ts
// expect: common/ is pure TypeScript
import path from 'path';
export const x = path;
