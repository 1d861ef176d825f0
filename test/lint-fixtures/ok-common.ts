// lint-as: common/src/good.ts
// expect: ok
import { z } from 'zod';
import { AppError } from './errors.ts';
export const x = [z, AppError];
