import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';
import { HeavyFilesLast } from './test/heavy-files-last.js';

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
    // Two test files at a time at least: vitest's default is one fewer than the cores, so a 2-core
    // machine ran every file alone, and integration files spend about half their time waiting on
    // PostgreSQL, Kafka, Redis and the processes they start. They can share those servers (each
    // isolates itself: uniqueName, createIsolatedDatabase, or servers of its own for anything
    // server-wide). One pool serves both projects, so this is the root's setting, not a project's.
    maxWorkers: Math.max(2, availableParallelism() - 1),
    sequence: { sequencer: HeavyFilesLast },
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
