import { defineConfig } from 'vitest/config';

// Unit tests run in parallel; live tests share one kernel (global sysctls, drop counters), so
// their files run one at a time in a single worker; ship tests check the release artifacts.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          testTimeout: 30_000,
        },
      },
      {
        test: {
          name: 'live',
          include: ['test/live/**/*.test.ts'],
          fileParallelism: false,
          maxWorkers: 1,
          testTimeout: 120_000,
          hookTimeout: 60_000,
        },
      },
      {
        // Release artifacts (npm run test:ship, after scripts/ship/test.sh builds them): the
        // packed tarball installed without a compiler, the single executable without Node.
        test: {
          name: 'ship',
          include: ['test/ship/**/*.test.ts'],
          fileParallelism: false,
          maxWorkers: 1,
          testTimeout: 120_000,
          hookTimeout: 300_000,
        },
      },
    ],
  },
});
