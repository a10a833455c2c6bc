/**
 * Runs one mutation target's unit tests in ONE process (`node --import tsx test/mutate/run-tests.mjs policy`):
 * importing the test files registers their tests with node:test, which runs them and sets a failing exit code if
 * any fails. One process instead of `node --test`'s one per file saves a startup per file per mutant.
 */
import { pathToFileURL } from 'node:url';
import { resolve } from 'node:path';
import { TARGETS } from './targets.mjs';

const name = process.argv[2] ?? '';
const target = TARGETS[name];
if (target === undefined) {
  console.error(`unknown mutation target ${JSON.stringify(name)}; one of: ${Object.keys(TARGETS).join(', ')}`);
  process.exit(2);
}
for (const file of target.tests) await import(pathToFileURL(resolve(file)).href);
