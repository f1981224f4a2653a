/**
 * `pnpm run deploy:sync`: copies the sources the Helm chart shares with deploy/k8s into
 * deploy/helm/walpurge/files (Helm reads no file outside its chart), and embeds walpurge.schema.json
 * into the chart's values.schema.json for `config` and `kafka`. Run it after editing the alert rules,
 * the Grafana dashboard or the config schema (`pnpm run config-schema`);
 * test/unit/deploy/helm-chart-files.test.ts fails while a copy is stale.
 */
import { writeFileSync } from 'node:fs';
import { chartSharedFiles } from '../unit/deploy/helm-chart-files.js';
import { repoPath } from '../unit/deploy/workspace.js';

for (const [path, content] of chartSharedFiles()) {
  writeFileSync(repoPath(path), content);
  process.stdout.write(`wrote ${path}\n`);
}
