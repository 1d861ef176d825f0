// lint-as: src-main/services/bad.ts
// expect: only src-main/electron/ may import 'electron'
import { safeStorage } from 'electron';
export const x = safeStorage;
