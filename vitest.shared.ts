import { defineConfig } from 'vitest/config';

// Every project's vitest.config.ts re-exports this. Workspace packages resolve to their TypeScript
// sources through the `@mstar/source` export condition, so tests never need a prior build.
export default defineConfig({
  resolve: { conditions: ['@mstar/source'] },
  ssr: { resolve: { conditions: ['@mstar/source'] } },
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
  },
});
