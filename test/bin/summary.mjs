// Prints one closing line per vitest report that CI systems can read: "vitest: N passed, N failed,
// N skipped" for the full suite, "vitest on PostgreSQL 13: ..." for the version subset's reports
// (test-results/vitest-pg<MAJOR>.json, see test-pg-versions.ts). Exit 1 if any report failed or is missing.
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';

const files = process.argv.length > 2 ? process.argv.slice(2) : ['test-results/vitest.json'];
let ok = true;
for (const file of files) {
  const major = /^vitest-pg(\d+)\.json$/.exec(basename(file))?.[1];
  const label = major === undefined ? 'vitest' : `vitest on PostgreSQL ${major}`;
  let report;
  try {
    report = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    console.log(`${label}: 0 passed, 1 failed (no report at ${file}: ${error.message})`);
    ok = false;
    continue;
  }
  const skipped = report.numPendingTests + report.numTodoTests;
  // Errors outside tests (an unhandled rejection) fail the run without failing a test.
  const errors = report.success === false && report.numFailedTests === 0 ? ', run failed (see the log)' : '';
  console.log(
    `${label}: ${report.numPassedTests} passed, ${report.numFailedTests} failed, ${skipped} skipped${errors}`,
  );
  if (report.numFailedTests !== 0 || report.numTotalTests === 0 || errors) ok = false;
}
process.exit(ok ? 0 : 1);
