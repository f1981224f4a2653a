// Prints one closing line per vitest report that CI systems can read: "vitest: N passed, N failed,
// N skipped" for the full suite, "vitest on PostgreSQL 13: ..." for the version subset's reports
// (test-results/vitest-pg<MAJOR>.json, see test-pg-versions.ts), then each failed test by file and
// name with its message's first lines: CI often keeps only the log's end, and a failure that only
// says "1 failed" cannot be told from a flake. Exit 1 if any report failed or is missing.
import { readFileSync } from 'node:fs';
import { basename, relative } from 'node:path';

// eslint-disable-next-line no-control-regex -- vitest's messages carry terminal colour codes
const colours = /\u001b\[[0-9;]*m/g;
const firstLines = (text, count) =>
  String(text)
    .replace(colours, '')
    .split('\n')
    .map((line) => line.trimEnd())
    .filter((line) => line.trim() !== '')
    .slice(0, count)
    .map((line) => `      ${line}`)
    .join('\n');

/** The failed tests of one report (and files that failed outside any test), as printable lines. */
function failures(report) {
  const lines = [];
  for (const file of report.testResults ?? []) {
    const name = relative(process.cwd(), file.name ?? '');
    const failed = (file.assertionResults ?? []).filter((test) => test.status === 'failed');
    for (const test of failed) {
      lines.push(`  FAILED ${name} > ${test.fullName ?? test.title}`);
      lines.push(firstLines((test.failureMessages ?? []).join('\n'), 6));
    }
    if (failed.length === 0 && file.status === 'failed') {
      lines.push(`  FAILED ${name} (outside any test)`);
      lines.push(firstLines(file.message ?? '', 6));
    }
  }
  return lines.filter((line) => line !== '');
}

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
  for (const line of failures(report)) console.log(line);
  if (report.numFailedTests !== 0 || report.numTotalTests === 0 || errors) ok = false;
}
process.exit(ok ? 0 : 1);
