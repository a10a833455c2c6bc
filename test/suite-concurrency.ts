/**
 * SNAPFERRY_TEST_CONCURRENCY, read by test/run-suite.ts: how many test files run at once. Read with Number() alone, a
 * typo ("three", "2x") went to node as --test-concurrency=NaN, which node took without a word, and the suite ran at a
 * concurrency nobody chose.
 */
export const CONCURRENCY_VAR = 'SNAPFERRY_TEST_CONCURRENCY';

/**
 * The number `raw` gives, or `fallback` when it is unset or empty (`VAR= npm test` clears it, as in the shell);
 * anything but a positive integer in decimal digits throws, naming the variable and what it must be.
 */
export function testConcurrency(raw: string | undefined, fallback: number): number {
  if (raw === undefined || raw === '') return fallback;
  if (!/^[1-9][0-9]*$/.test(raw)) {
    throw new Error(`${CONCURRENCY_VAR} is ${JSON.stringify(raw)}: it must be a positive integer, how many test files run at once (e.g. ${CONCURRENCY_VAR}=2), or unset for ${fallback}`);
  }
  return Number(raw);
}
