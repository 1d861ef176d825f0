// lint-as: src-renderer/src/bad.ts
// expect: src-renderer/ may not import 'better-sqlite3'
import Database from 'better-sqlite3';
export const x = Database;
