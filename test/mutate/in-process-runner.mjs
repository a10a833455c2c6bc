/**
 * A Stryker test runner for a target's node:test files, run in Stryker's own worker process instead of one process
 * per mutant (the `command` runner): the policy's 300-odd mutants cost five minutes of both of CI's cores that way,
 * most of it in starting node. Stryker has no node:test runner, and node:test (Node 20) cannot run a test twice in
 * one process, so the target's test files are bundled with `node:test` replaced by test/mutate/collect-tests.mjs
 * (bundle-tests.mjs), which only records each test; this runner imports the bundles once and calls the recorded
 * tests itself, with the active mutant switched between runs as Stryker's in-process runners (mocha, jest) do.
 *
 * Coverage is recorded per test, so Stryker runs a mutant against the tests that reach it only, and knows the static
 * mutants (reached while the modules load): for those it starts a fresh worker, where the mutant is set before the
 * bundles are imported. A mutant that loops is cut off by Stryker's timeout, which ends the worker.
 */
import { pathToFileURL } from 'node:url';
import { resolve } from 'node:path';
import { setImmediate } from 'node:timers/promises';
import { INSTRUMENTER_CONSTANTS as ID } from '@stryker-mutator/api/core';
import { declareClassPlugin, PluginKind } from '@stryker-mutator/api/plugin';
import { DryRunStatus, TestStatus, determineHitLimitReached, toMutantRunResult } from '@stryker-mutator/api/test-runner';
import { RECORDED } from './collect-tests.mjs';

class InProcessNodeTestRunner {
  constructor() {
    this.loaded = false;
    /** Errors no test awaited (a stream's late 'error', say): they fail the test that was running. */
    this.stray = [];
    process.on('unhandledRejection', (err) => this.stray.push(err));
    process.on('uncaughtException', (err) => this.stray.push(err));
  }

  capabilities() {
    return { reloadEnvironment: false };
  }

  /** The bundles of the target's tests, imported once: importing registers their tests with collect-tests.mjs. */
  async load() {
    if (this.loaded) return;
    this.loaded = true;
    const { TARGETS, bundleOf } = await import(pathToFileURL(resolve('test/mutate/targets.mjs')).href);
    const target = TARGETS[process.env.SNAPFERRY_MUTATE ?? 'policy'];
    for (const file of target.tests) await import(pathToFileURL(resolve(bundleOf(file))).href);
  }

  async dryRun({ coverageAnalysis }) {
    const ns = namespace();
    ns[ID.MUTATION_COVERAGE_OBJECT] = { static: {}, perTest: {} };
    await this.load();
    const tests = await this.runTests({ perTest: coverageAnalysis === 'perTest', bail: false });
    const coverage = ns[ID.MUTATION_COVERAGE_OBJECT];
    ns[ID.MUTATION_COVERAGE_OBJECT] = undefined;
    return { status: DryRunStatus.Complete, tests, mutantCoverage: coverageAnalysis === 'off' ? undefined : coverage };
  }

  async mutantRun({ activeMutant, testFilter, hitLimit, disableBail, mutantActivation }) {
    const ns = namespace();
    ns[ID.HIT_COUNT] = hitLimit === undefined ? undefined : 0;
    ns[ID.HIT_LIMIT] = hitLimit;
    // A static mutant acts while the modules load: set before the (fresh) worker imports them.
    if (mutantActivation === 'static') ns[ID.ACTIVE_MUTANT] = activeMutant.id;
    await this.load();
    ns[ID.ACTIVE_MUTANT] = activeMutant.id;
    try {
      const tests = await this.runTests({ only: testFilter, bail: !disableBail });
      const timeout = determineHitLimitReached(ns[ID.HIT_COUNT], ns[ID.HIT_LIMIT]);
      return toMutantRunResult(timeout ?? { status: DryRunStatus.Complete, tests });
    } finally {
      ns[ID.ACTIVE_MUTANT] = undefined;
    }
  }

  /** Runs the recorded tests (those named in `only`, when given) one after the other, as node:test would. */
  async runTests({ only, perTest = false, bail }) {
    const ns = namespace();
    const wanted = only === undefined ? null : new Set(only);
    const results = [];
    for (const [i, recorded] of RECORDED.entries()) {
      const id = `${i}: ${recorded.name}`;
      if (wanted !== null && !wanted.has(id)) continue;
      if (recorded.skip) {
        results.push({ id, name: recorded.name, status: TestStatus.Skipped, timeSpentMs: 0 });
        continue;
      }
      if (perTest) ns[ID.CURRENT_TEST_ID] = id;
      this.stray = [];
      const started = Date.now();
      let failure = await recorded.run().then(() => null, (err) => err);
      // What failed after the test's own awaits (a late stream error) shows up a turn later.
      await setImmediate();
      failure ??= this.stray[0] ?? null;
      ns[ID.CURRENT_TEST_ID] = undefined;
      const timeSpentMs = Date.now() - started;
      if (failure === null) {
        results.push({ id, name: recorded.name, status: TestStatus.Success, timeSpentMs });
        continue;
      }
      results.push({ id, name: recorded.name, status: TestStatus.Failed, timeSpentMs, failureMessage: String(failure?.stack ?? failure) });
      if (bail) break;
    }
    return results;
  }
}

function namespace() {
  return (globalThis[ID.NAMESPACE] ??= {});
}

export const strykerPlugins = [declareClassPlugin(PluginKind.TestRunner, 'snapferry-in-process', InProcessNodeTestRunner)];
