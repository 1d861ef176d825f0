// lint-as: cloud/src/bad.ts
// expect: only src-main/electron/ may import 'electron'
export { app } from 'electron';
