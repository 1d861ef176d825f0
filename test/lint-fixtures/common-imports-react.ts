// lint-as: common/src/bad.ts
// expect: common/ may import only zod
import { useState } from 'react';
export const x = useState;
