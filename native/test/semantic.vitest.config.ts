// `npm run test:semantic`: only the semantic suites on the demo model (they also run in `npm test`).
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: { root: import.meta.dirname, include: ['semantic.test.ts', 'img2img-semantic.test.ts'], testTimeout: 600_000 },
});
