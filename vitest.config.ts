import { defineConfig } from 'vitest/config';

// One Vitest project per package. Slow suites (real Postgres, cognito-local, s3rver, the engine)
// live in their package's project; e2e browser tests are run by test/run.ts after these.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'common',
          root: './common',
          include: ['src/**/*.test.ts'],
          typecheck: { enabled: true, include: ['src/**/*.test-d.ts'], tsconfig: './tsconfig.json' },
        },
      },
      {
        test: {
          name: 'native',
          root: './native',
          include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
          testTimeout: 120_000,
          hookTimeout: 300_000,
        },
      },
      {
        test: {
          name: 'cloud',
          root: './cloud',
          include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
          // One embedded Postgres + cognito-local for the run; see cloud/test/support.
          globalSetup: ['./test/support/global-setup.ts'],
          testTimeout: 60_000,
          hookTimeout: 120_000,
          fileParallelism: false,
        },
      },
      {
        test: {
          name: 'desktop',
          root: './src-main',
          include: ['**/*.test.ts'],
          testTimeout: 60_000,
          hookTimeout: 120_000,
        },
      },
      { test: { name: 'renderer', root: './src-renderer', include: ['src/**/*.test.ts', 'src/**/*.test.tsx'] } },
      { test: { name: 'repo', root: './test', include: ['*.test.ts'], testTimeout: 120_000 } },
      {
        // Desktop services against the real cloud pieces (Postgres, cognito-local, s3rver): issue 13's sync.
        test: {
          name: 'system',
          root: './test/system',
          include: ['*.test.ts'],
          globalSetup: ['../../cloud/test/support/global-setup.ts'],
          testTimeout: 120_000,
          hookTimeout: 120_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
