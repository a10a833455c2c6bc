// @ts-check
/**
 * Mutation testing (Stryker 9: the last line that runs on Node 20). One target per run, chosen by SNAPFERRY_MUTATE
 * (test/mutate/targets.mjs lists them); `npm run mutate [-- target...]` runs each in turn and prints the scores.
 *
 * Stryker has no node:test runner, so the `command` runner runs the target's unit tests in one process for each
 * mutant. The mutants are written into the TypeScript sources in a sandbox copy (.stryker-tmp/<target>/, with
 * node_modules linked in), all at once behind a switch that Stryker's environment variable flips; tsx strips the
 * types as it loads them, so no build and no type check stand between a mutant and the tests. The command runner
 * has no per-test coverage, so every mutant runs all of the target's tests (or, with `testsFor`, those of its file),
 * stopping at the first that fails (test/mutate/bail-reporter.mjs). A target with `bundle: true` runs its tests from
 * esbuild bundles built once in the sandbox (test/mutate/bundle-tests.mjs), not through tsx.
 */
import { availableParallelism } from 'node:os';
import { TARGETS } from './test/mutate/targets.mjs';

const name = process.env.SNAPFERRY_MUTATE ?? 'policy';
const target = TARGETS[name];
if (target === undefined) throw new Error(`SNAPFERRY_MUTATE=${name}: not one of ${Object.keys(TARGETS).join(', ')}`);

/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  // A bundled target runs in Stryker's worker (test/mutate/in-process-runner.mjs), each mutant against the tests that
  // reach it; the others as one process per mutant that runs all of the target's tests.
  ...(target.bundle === true
    ? {
      testRunner: 'snapferry-in-process',
      plugins: ['@stryker-mutator/*', './test/mutate/in-process-runner.mjs'],
      coverageAnalysis: 'perTest',
      // Once, after the mutants are written: the tests bundled, with node:test replaced by what the runner calls.
      buildCommand: `node test/mutate/bundle-tests.mjs ${name}`,
    }
    : {
      testRunner: 'command',
      commandRunner: { command: `node --test-reporter=./test/mutate/bail-reporter.mjs test/mutate/run-tests.mjs ${name}` },
    }),
  mutate: target.mutate,
  // Code under test and its tests; bench data, deploy files and the rest need not be copied per run.
  ignorePatterns: ['/.tmp', '/deploy', '/nginx', '/test/bench', '/test/e2e', '/test/chaos'],
  tempDirName: `.stryker-tmp/${name}`,
  // One test process per mutant, one per core (two on the two-core test machine).
  concurrency: Math.max(2, availableParallelism() - 1),
  // Mutants that make a loop endless end as timeouts (killed), not as hangs.
  timeoutMS: 10_000,
  thresholds: { high: target.break, low: target.break, break: target.break },
  reporters: ['clear-text', 'progress', 'html', 'json'],
  htmlReporter: { fileName: `reports/mutation/${name}.html` },
  jsonReporter: { fileName: `reports/mutation/${name}.json` },
  cleanTempDir: 'always',
};
