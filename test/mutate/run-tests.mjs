/**
 * Runs one mutation target's unit tests in ONE process (`node test/mutate/run-tests.mjs policy`):
 * importing the test files registers their tests with node:test, which runs them and sets a failing exit code if
 * any fails. One process instead of `node --test`'s one per file saves a startup per file per mutant.
 */
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { resolve } from 'node:path';
import { TARGETS, bundleOf } from './targets.mjs';

const name = process.argv[2] ?? '';
const target = TARGETS[name];
if (target === undefined) {
  console.error(`unknown mutation target ${JSON.stringify(name)}; one of: ${Object.keys(TARGETS).join(', ')}`);
  process.exit(2);
}
// A bundled target's tests run as plain JavaScript (test/mutate/bundle-tests.mjs); the others through tsx.
if (target.bundle !== true) (await import('tsx/esm/api')).register();
for (const file of testsOf(target)) await import(pathToFileURL(resolve(target.bundle === true ? bundleOf(file) : file)).href);

/**
 * The target's tests, or with `testsFor` those of the file that holds the active mutant. Stryker names the mutant in
 * an environment variable, and the instrumented sandbox sources test for it as `stryMutAct_9fa48("<id>")`.
 */
function testsOf({ tests, testsFor }) {
  const id = process.env.__STRYKER_ACTIVE_MUTANT__;
  if (testsFor === undefined || id === undefined) return tests;
  const probe = new RegExp(`stryMutAct_9fa48\\(["']${id}["']\\)`);
  const file = Object.keys(testsFor).find((f) => probe.test(readFileSync(f, 'utf8')));
  if (file === undefined) return tests;
  return testsFor[file].map((name) => `test/wire/${name}.test.ts`);
}
