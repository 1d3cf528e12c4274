// Prints "N passed, N failed" from Jest's JSON summary, so a run that executed no test shows.
import { readFile } from 'node:fs/promises';

const file = process.argv[2] ?? 'test-results/jest.json';
try {
  const summary = JSON.parse(await readFile(file, 'utf8')) as { numPassedTests: number; numFailedTests: number; numPendingTests: number };
  const skipped = summary.numPendingTests > 0 ? `, ${summary.numPendingTests} skipped` : '';
  console.log(`${summary.numPassedTests} passed, ${summary.numFailedTests} failed${skipped}`);
} catch (error) {
  console.error(`no Jest summary in ${file}: ${(error as Error).message}`);
  console.log('0 passed, 0 failed');
  process.exitCode = 1;
}
