// lint-as: src-renderer/src/bad.ts
// expect: src-renderer/ imports only common/ and UI libraries
import { x as y } from '@atelier/engine';
export const x = y;
