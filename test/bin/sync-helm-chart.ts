/**
 * `pnpm run deploy:sync`: copies the sources the Helm chart shares with deploy/k8s into
 * deploy/helm/walpurge/files (Helm reads no file outside its chart). Run it after editing the alert
 * rules or the Grafana dashboard; test/unit/deploy/helm-chart-files.test.ts fails while a copy is stale.
 */
import { writeFileSync } from 'node:fs';
import { chartSharedFiles } from '../unit/deploy/helm-chart-files.js';
import { repoPath } from '../unit/deploy/workspace.js';

for (const [path, content] of chartSharedFiles()) {
  writeFileSync(repoPath(path), content);
  process.stdout.write(`wrote ${path}\n`);
}
