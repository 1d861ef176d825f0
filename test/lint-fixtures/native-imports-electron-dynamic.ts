// lint-as: native/src/bad.ts
// expect: only src-main/electron/ may import 'electron'
export const x = await import('electron');
