// `npm run test:semantic`: the semantic suite on the demo model, outside `npm test` until the
// committed model meets the bars (see native/training/README.md, "Status").
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: { root: import.meta.dirname, include: ['semantic.spec.ts', 'img2img-semantic.spec.ts'], testTimeout: 600_000 },
});
