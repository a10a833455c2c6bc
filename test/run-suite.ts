/**
 * `npm test`: every test file under test/, three at a time (MAIN_CONCURRENCY), as `node --test` runs them, with one Ceph RGW started
 * first and shared by the files that need an S3 server (test/fixtures/s3.ts sharedOrOwnS3). A start takes 10 to 30 s
 * on a 2-core machine, and a cluster per archive file cost the suite minutes of CI's 30. Without root or radosgw
 * nothing is started, and the files skip or start their own as they would alone. Arguments that name test files run
 * those files only; others go to `node --test`.
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { isRoot } from './fixtures/btrfs.ts';
import { startS3, suiteS3Env, SUITE_S3_ENV, type S3Server } from './fixtures/s3.ts';
import { CONCURRENCY_VAR, testConcurrency } from './suite-concurrency.ts';

/**
 * Files that spend minutes waiting and little CPU (slow-patch.test.ts holds one PATCH open for 320 s; each silent-line
 * file waits out silences of 20 to 60 s; restore-limits waits out Retry-After and an idle timeout, 31 s of CPU in 82 s
 * alone; expiry waits out its expiry periods, 16 s of CPU in 56 s): they run one at a time beside the others
 * instead of taking one of their places, and their report follows. About 800 s in all, against some 1700 s of the
 * others (the times the log ends with); the files with bounds on CPU or answer times (slow-link-slivers.test.ts) stay
 * with the others.
 */
const WAITING = new Set([
  'test/e2e/slow-patch.test.ts',
  'test/e2e/silent-line-cuts.test.ts',
  'test/e2e/silent-line-kills.test.ts',
  'test/e2e/silent-line-last-patch.test.ts',
  'test/e2e/silent-line-minute.test.ts',
  'test/e2e/silent-line-receive.test.ts',
  'test/e2e/restore-limits.test.ts',
  'test/e2e/expiry.test.ts',
]);

const root = path.dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const named = args.filter((a) => a.endsWith('.test.ts'));
const options = args.filter((a) => !a.endsWith('.test.ts'));
const files = named.length > 0 ? named : readdirSync(root, { recursive: true, encoding: 'utf8' })
  .filter((f) => f.endsWith('.test.ts'))
  .map((f) => path.join('test', f))
  .sort();

/**
 * How long one file may run before node:test cancels it (Node 20 applies --test-timeout to a whole file). The
 * slowest, slow-patch.test.ts, takes about 6 minutes; a file that hangs is then named in the report instead of
 * holding the suite until CI's own limit cuts it off with nothing said.
 */
const FILE_TIMEOUT_MS = 12 * 60_000;

/**
 * How many of the other files run at once. Three on CI's two cores: the files spend most of their time waiting (on
 * rate-limited lines, leases, timeouts and btrfs), 20% of it on their own CPU and their children's in a sampled run,
 * so a third file fills the cores the two left idle. SNAPFERRY_TEST_CONCURRENCY sets another number.
 */
const MAIN_CONCURRENCY = (() => {
  try {
    return testConcurrency(process.env[CONCURRENCY_VAR], 3);
  } catch (err) {
    // Before any runner starts: a suite run at a number nobody chose is worse than none.
    process.stderr.write(`run-suite: ${(err as Error).message}\n`);
    process.exit(2);
  }
})();

// Each runner writes its failures, with their errors, to a file of its own beside its TAP (test/failures-reporter.mjs),
// and the time each file's tests took (test/timings-reporter.mjs).
const reportsDir = mkdtempSync(path.join(os.tmpdir(), 'snapferry-failures-'));
const reporters = (name: string) => [
  '--test-reporter=tap', '--test-reporter-destination=stdout',
  `--test-reporter=${path.join(root, 'failures-reporter.mjs')}`, `--test-reporter-destination=${path.join(reportsDir, name)}`,
  `--test-reporter=${path.join(root, 'timings-reporter.mjs')}`, `--test-reporter-destination=${path.join(reportsDir, `${name}.timings`)}`,
];
const nodeTest = (name: string, concurrency: number, list: string[], env: Record<string, string>, stdout: 'inherit' | 'pipe') =>
  execa(process.execPath, ['--import', 'tsx', '--test', `--test-concurrency=${concurrency}`, `--test-timeout=${FILE_TIMEOUT_MS}`, ...reporters(name), ...options, ...list], {
    stdin: 'ignore', stdout, stderr: stdout, all: stdout === 'pipe', env, reject: false,
  });

const waiting = files.filter((f) => WAITING.has(f));
const aside = waiting.length > 0 && waiting.length < files.length ? nodeTest('beside', 1, waiting, {}, 'pipe') : undefined;
const main = files.filter((f) => aside === undefined || !WAITING.has(f));

let s3: S3Server | undefined;
if (isRoot && (await execa('radosgw', ['--version'], { reject: false })).exitCode === 0) {
  try {
    s3 = await startS3();
  } catch (err) {
    // Each file then tries a start of its own, and fails with its own error if RGW cannot start at all.
    process.stderr.write(`run-suite: no shared S3 server (${(err as Error).message.split('\n')[0]}); the archive files start their own\n`);
  }
}

const run = nodeTest('main', MAIN_CONCURRENCY, main, s3 ? { [SUITE_S3_ENV]: suiteS3Env(s3) } : {}, 'inherit');
// The runners go down with the suite: a SIGTERM sent to this process alone (a CI timeout) must not leave them running.
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.once(signal, () => {
    run.kill(signal);
    aside?.kill(signal);
  });
}
const results = [await run];
await s3?.close();
if (aside) {
  const result = await aside;
  process.stdout.write(`\n# ${waiting.join(', ')}, run beside the others:\n${result.all ?? ''}\n`);
  results.push(result);
}
const report = (name: string): string => {
  try {
    return readFileSync(path.join(reportsDir, name), 'utf8');
  } catch {
    return '';
  }
};
const failed = report('main') + report('beside');
const timings = [report('main.timings'), report('beside.timings')];
rmSync(reportsDir, { recursive: true, force: true });
if (timings[0] !== '') process.stdout.write(`\n# run-suite: the ${MAIN_CONCURRENCY} at a time\n${timings[0]}`);
if (timings[1] !== '') process.stdout.write(`# run-suite: beside them\n${timings[1]}`);
if (failed !== '') process.stdout.write(`\n# run-suite: what failed, and why (each is in the TAP above too):\n${failed}`);
process.stdout.write(`# run-suite: ${results.map((r) => `${r === results[0] ? `the ${MAIN_CONCURRENCY} at a time` : 'beside them'} exited ${r.exitCode ?? r.signal}`).join(', ')}\n`);
process.exitCode = results.every((r) => r.exitCode === 0) ? 0 : 1;
