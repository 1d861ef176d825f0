// lint-as: common/src/bad.ts
// expect: only src-main/electron/ may import 'electron'
import { app } from 'electron';
export const x = app;
