// `npm run test:semantic`: only the semantic suite on the demo model (it also runs in `npm test`).
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: { root: import.meta.dirname, include: ['semantic.test.ts'], testTimeout: 600_000 },
});
