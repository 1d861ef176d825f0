// lint-as: src-main/electron/main.ts
// expect: ok
import { app } from 'electron';
import { ipcContract } from '@atelier/common';
export const x = [app, ipcContract];
