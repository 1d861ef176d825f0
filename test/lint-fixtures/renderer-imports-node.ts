// lint-as: src-renderer/src/bad.ts
// expect: src-renderer/ runs in the browser
import { readFile } from 'node:fs/promises';
export const x = readFile;
