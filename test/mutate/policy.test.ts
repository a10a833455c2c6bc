/**
 * CI's mutation test of the send-stream policy: Stryker mutates core/wire/sendstream-policy.ts one change at a time
 * and the policy's unit tests must notice. The run fails when the score drops below the policy's threshold
 * (test/mutate/targets.mjs), so a rule that no test isolates any more fails CI. About 25 s of CPU for 340 mutants,
 * run in Stryker's worker (test/mutate/in-process-runner.mjs), each against the tests that reach it.
 * The other targets (frame, plan, retention) run with `npm run mutate`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));

test('every rule of the send-stream policy is held by a test (mutation score at its threshold)', { timeout: 15 * 60_000 }, async (t) => {
  // Its own process group, so that a timeout ends Stryker and its test processes too, not only the driver.
  const child = spawn(process.execPath, ['test/mutate/mutate.mjs', 'policy'], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  const stop = () => {
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) process.kill(-child.pid, 'SIGTERM');
  };
  t.signal.addEventListener('abort', stop);
  t.after(stop);
  let output = '';
  child.stdout.on('data', (b: Buffer) => (output += b.toString()));
  child.stderr.on('data', (b: Buffer) => (output += b.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  const summary = output.slice(output.lastIndexOf('mutation scores:'));
  assert.equal(code, 0, `npm run mutate -- policy failed:\n${summary.length > 20 ? summary : output.slice(-4000)}`);
  assert.match(summary, /^policy: \d+\.\d+%/m);
});
