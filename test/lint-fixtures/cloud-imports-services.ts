// lint-as: cloud/src/api/bad.ts
// expect: cloud/ never imports desktop code
import { x as y } from '../../../src-main/services/library.ts';
export const x = y;
