// lint-as: src-renderer/src/bad.ts
// expect: src-renderer/ imports only common/ and UI libraries
import { x as y } from '../../src-main/services/library.ts';
export const x = y;
