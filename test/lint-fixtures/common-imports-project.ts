// lint-as: common/src/bad.ts
// expect: common/ imports nothing from the project
import { x as y } from '../../native/src/index.ts';
export const x = y;
