/**
 * What `node:test` is in the bundles of an in-process mutation target (bundle-tests.mjs): `test()` records each test
 * instead of running it, and test/mutate/in-process-runner.mjs runs the recorded tests once per mutant. Each bundle
 * inlines its own copy of this module, so the list is kept on globalThis, where the runner's copy finds it too.
 * Only what the target's tests use is here: `test(name, [options], fn)`, with `skip`, and a context with `after`
 * and `diagnostic`; anything else fails loudly in the dry run.
 */
export const RECORDED = (globalThis.__snapferryRecordedTests ??= []);

export function test(name, options, fn) {
  if (typeof options === 'function') [options, fn] = [{}, options];
  RECORDED.push({
    name,
    skip: Boolean(options?.skip || options?.todo),
    async run() {
      const afters = [];
      const context = { name, after: (f) => afters.push(f), diagnostic: () => {} };
      try {
        await fn(context);
      } finally {
        for (const f of afters.reverse()) await f();
      }
    },
  });
}

export const it = test;
export default test;
