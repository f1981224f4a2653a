import { defineConfig } from 'vitest/config';

// Two projects: `unit` needs nothing running; `integration` gets real PostgreSQL, Kafka and Redis
// from test/global-setup.ts (env URLs → Testcontainers → local processes), started once per run.
const shared = {
  resolve: { conditions: ['@walpurge/source'] },
  ssr: { resolve: { conditions: ['@walpurge/source'] } },
};
const ignore = ['**/node_modules/**', '**/dist/**'];

export default defineConfig({
  ...shared,
  test: {
    projects: [
      {
        ...shared,
        test: {
          name: 'unit',
          include: ['packages/*/src/**/*.test.ts', 'services/*/src/**/*.test.ts', 'test/unit/**/*.test.ts'],
          exclude: [...ignore, '**/*.int.test.ts'],
          testTimeout: 20_000,
        },
      },
      {
        ...shared,
        test: {
          name: 'integration',
          include: ['**/*.int.test.ts'],
          exclude: ignore,
          globalSetup: ['test/global-setup.ts'],
          testTimeout: 120_000,
          hookTimeout: 180_000,
          pool: 'forks',
        },
      },
    ],
  },
});
