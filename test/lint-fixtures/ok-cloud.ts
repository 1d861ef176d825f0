// lint-as: cloud/src/good.ts
// expect: ok
import { readFile } from 'node:fs/promises';
import { GenerateRequest } from '@atelier/common';
import pg from 'pg';
export const x = [readFile, GenerateRequest, pg];
