// lint-as: common/src/bad.ts
// expect: common/ may import only zod
import Database from 'better-sqlite3';
export const x = Database;
