// Prints one closing line per vitest report that CI systems can read: "vitest: N passed, N failed,
// N skipped" for the full suite, "vitest on PostgreSQL 13: ..." for the version subset's reports
// (test-results/vitest-pg<MAJOR>.json, see test-pg-versions.ts), then each failed test by file and
// name with its message's first lines: CI often keeps only the log's end, and a failure that only
// says "1 failed" cannot be told from a flake. Exit 1 if any report failed or is missing.
//
// `--rerun R`: R is the report of test-all.sh's one rerun of the full suite's failed files. When every
// test of R passed, the full suite's failures are printed as FLAKY (failed, then passed when rerun
// alone) and do not fail the run; any failure in R, or a failure outside a test, still does.
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

const args = process.argv.slice(2);
const rerunAt = args.indexOf('--rerun');
const rerunFile = rerunAt === -1 ? undefined : args.splice(rerunAt, 2)[1];
const files = args.length > 0 ? args : ['test-results/vitest.json'];
const readReport = (file) => JSON.parse(readFileSync(file, 'utf8'));
let rerun;
try {
  rerun = rerunFile === undefined ? undefined : readReport(rerunFile);
} catch {
  rerun = undefined;
}
/** Every test of the rerun passed, and it ran the files that failed. */
const rerunPassed = (report) => {
  if (
    rerun === undefined ||
    rerun.numFailedTests !== 0 ||
    rerun.numTotalTests === 0 ||
    rerun.success === false
  )
    return false;
  const rerunFiles = new Set((rerun.testResults ?? []).map((result) => result.name));
  return (report.testResults ?? [])
    .filter((result) => result.status === 'failed')
    .every((result) => rerunFiles.has(result.name));
};
let ok = true;
for (const file of files) {
  const major = /^vitest-pg(\d+)\.json$/.exec(basename(file))?.[1];
  const label = major === undefined ? 'vitest' : `vitest on PostgreSQL ${major}`;
  let report;
  try {
    report = readReport(file);
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
  const failed = report.numFailedTests !== 0 || report.numTotalTests === 0 || errors;
  // Only the full suite was rerun (on the default PostgreSQL), so only its failures can be flaky.
  const flaky = major === undefined && failed && !errors && report.numTotalTests !== 0 && rerunPassed(report);
  for (const line of failures(report)) console.log(flaky ? line.replace(/^ {2}FAILED /, '  FLAKY ') : line);
  if (flaky)
    console.log(
      `${label}: the ${report.numFailedTests} failed test(s) above passed when their files were rerun alone (${rerun.numPassedTests} passed): FLAKY, reported, not failing the run`,
    );
  else if (failed) ok = false;
}
process.exit(ok ? 0 : 1);
