// lint-as: src-main/host/bad.ts
// expect: only src-main/electron/ may import 'electron'
const electron = require('electron');
export const x = electron;
