// Prints the test files a vitest JSON report has failed tests in, one per line (relative paths), for
// test-all.sh's single rerun. Prints nothing when the run failed outside any test (an unhandled
// error, a missing report): a rerun of files cannot tell those apart from a real failure.
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';

const [file] = process.argv.slice(2);
let report;
try {
  report = JSON.parse(readFileSync(file, 'utf8'));
} catch {
  process.exit(0);
}
const failedFiles = (report.testResults ?? [])
  .filter((result) => (result.assertionResults ?? []).some((test) => test.status === 'failed'))
  .map((result) => relative(process.cwd(), result.name));
const failedElsewhere = (report.testResults ?? []).some(
  (result) =>
    result.status === 'failed' && !(result.assertionResults ?? []).some((test) => test.status === 'failed'),
);
if (!failedElsewhere) for (const name of failedFiles) console.log(name);
