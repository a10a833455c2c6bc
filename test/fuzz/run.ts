/**
 * Runs the coverage-guided fuzz targets (targets.ts) for a bounded time: `npm run fuzz` (60 s of fuzzing in all by
 * default, plus about 2.5 s for each target to start; `npm run fuzz -- --seconds 600`, `--target policy`, `--keep`
 * to keep the work folder), and test/fuzz/fuzz.test.ts in CI. Exits 1 when a target crashed, hung, or never ran.
 *
 * Why jsfuzz: @jazzer.js/core cannot load here. Its 4.x prebuilt addon needs GLIBC_2.38 and GLIBCXX_3.4.32 (Debian
 * 12 has 2.36), and 2.x downloads its addon from GitHub at install time, which this network cannot reach. jsfuzz
 * 1.0.15 is plain JavaScript: it instruments every CommonJS module it `require`s with istanbul and mutates inputs
 * (at most 4096 bytes) towards new coverage. Our code is TypeScript ESM, so the targets are bundled with esbuild into
 * one CommonJS file in a temporary folder, native modules left out (they load from node_modules via NODE_PATH).
 *
 * jsfuzz 1.0.15 has no time limit of its own (its options: --timeout, --rss-limit-mb, --exact-artifact-path,
 * --regression, --only-ascii, --versifier), so each run is ended with SIGINT, on which its worker stops at the next
 * input. A worker that does not stop within GRACE_MS is stuck in one input: it is killed, and jsfuzz then records
 * that input as a crash, as it does for inputs over --timeout during the run.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import esbuild from 'esbuild';
import { seeds } from './seeds.ts';
import type { TargetName } from './targets.ts';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, '../..');
const JSFUZZ = path.join(REPO, 'node_modules/jsfuzz/build/src/index.js');
export const TARGETS: readonly TargetName[] = ['frames', 'sendstream', 'policy'];
/**
 * One input taking longer than this (seconds) is a hang; jsfuzz checks every 3 s. It must exceed the worker's start
 * (istanbul instruments the bundle: about 2.5 s here), which jsfuzz counts as the first input's time. An input stuck
 * when the run ends is caught by GRACE_MS instead.
 */
const INPUT_TIMEOUT_S = 10;
const GRACE_MS = 5000;
/** How long a worker may take to start (load istanbul, instrument the bundle, run its first input). */
const STARTUP_MS = 30_000;

export interface FuzzResult {
  target: TargetName;
  /** Inputs run, from jsfuzz's last status line. */
  executions: number;
  /** Statements, functions and branches covered (jsfuzz's count). */
  coverage: number;
  /** What went wrong, with the input (hex) jsfuzz saved; null when nothing did. */
  crash: { output: string; input: string; file: string } | null;
  /** jsfuzz's whole output, for a report. */
  log: string;
}

export interface FuzzOptions {
  /** Fuzzing time for all targets together, shared equally; each target's starts at its first input. */
  seconds: number;
  targets?: readonly TargetName[];
  /** Keep the work folder (bundle, corpus, crash inputs) and say where. */
  keep?: boolean;
  log?: (line: string) => void;
}

export async function runFuzz(options: FuzzOptions): Promise<FuzzResult[]> {
  const names = options.targets ?? TARGETS;
  const log = options.log ?? (() => undefined);
  const work = await mkdtemp(path.join(os.tmpdir(), 'snapferry-fuzz-'));
  const results: FuzzResult[] = [];
  try {
    await esbuild.build({
      entryPoints: [path.join(HERE, 'targets.ts')],
      bundle: true,
      platform: 'node',
      format: 'cjs',
      target: 'node20',
      outfile: path.join(work, 'targets.cjs'),
      // Native addons cannot be bundled; they are found through NODE_PATH (below).
      external: ['zstd-napi', 'zstd-napi/*', '@node-rs/crc32'],
      logLevel: 'error',
    });
    const corpus = await seeds();
    for (const name of names) {
      await writeFile(path.join(work, `${name}.cjs`), `module.exports.fuzz = require('./targets.cjs').targets[${JSON.stringify(name)}];\n`);
      const dir = path.join(work, `corpus-${name}`);
      await mkdir(dir);
      for (const [i, seed] of corpus[name].entries()) await writeFile(path.join(dir, `seed-${i}`), seed);
    }
    const each = (options.seconds * 1000) / names.length;
    for (const name of names) {
      const result = await runTarget(work, name, each);
      log(`${name}: ${result.executions} inputs, coverage ${result.coverage}${result.crash ? `, FAILED:\n${result.crash.output}\ninput (hex): ${result.crash.input}` : ''}`);
      results.push(result);
    }
    return results;
  } finally {
    const failed = results.some((r) => r.crash !== null);
    if (options.keep || failed) log(`work folder kept: ${work}`);
    else await rm(work, { recursive: true, force: true });
  }
}

async function runTarget(work: string, name: TargetName, ms: number): Promise<FuzzResult> {
  const crashFile = path.join(work, `crash-${name}`);
  const args = [JSFUZZ, `./${name}.cjs`, `corpus-${name}`, '--timeout', String(INPUT_TIMEOUT_S), '--rss-limit-mb', '1024', '--exact-artifact-path', crashFile];
  // Its own process group, so that the SIGINT that ends the run reaches jsfuzz and its worker and nothing else.
  const child = spawn(process.execPath, args, {
    cwd: work,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NODE_PATH: path.join(REPO, 'node_modules') },
  });
  const pid = child.pid!;
  let output = '';
  let onOutput = (): void => undefined;
  const collect = (b: Buffer): void => {
    output += b.toString();
    onOutput();
  };
  child.stdout.on('data', collect);
  child.stderr.on('data', collect);
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  // The worker ignores SIGINT only once it has started (its handler comes after loading istanbul and instrumenting
  // the bundle); before, SIGINT would kill it and jsfuzz would call that a crash. So the run ends after its first input.
  const started = new Promise<void>((resolve) => {
    onOutput = () => {
      if (/^#[1-9]\d* /m.test(output)) resolve();
    };
  });
  let note = '';
  // The target's time counts from its first input, so that a slow start (a loaded CI machine) does not eat it.
  await within(Promise.race([started, exited]), STARTUP_MS);
  if (!(await within(exited, ms))) {
    signalGroup(pid, 'SIGINT');
    if (!(await within(exited, GRACE_MS))) {
      note = `the worker did not stop within ${GRACE_MS} ms of SIGINT: it hangs on the input below\n`;
      await killWorker(pid);
      if (!(await within(exited, GRACE_MS))) signalGroup(pid, 'SIGKILL');
    }
  }
  await exited;
  const status = [...output.matchAll(/^#(\d+) \w+\s+cov: (\d+)/gm)].at(-1);
  const crash = existsSync(crashFile)
    ? { output: note + output.slice(Math.max(0, output.indexOf('====='))).slice(0, 4000), input: (await readFile(crashFile)).toString('hex'), file: crashFile }
    : null;
  return { target: name, executions: Number(status?.[1] ?? 0), coverage: Number(status?.[2] ?? 0), crash, log: output };
}

/** Whether `promise` settles within `ms`. */
async function within(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  try {
    return await Promise.race([promise.then(() => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // Already gone.
  }
}

/** Kills jsfuzz's worker alone (its children per /proc), so that jsfuzz saves the input it was stuck on. */
async function killWorker(pid: number): Promise<void> {
  const children = await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8').catch(() => '');
  for (const child of children.split(/\s+/).filter(Boolean)) {
    try {
      process.kill(Number(child), 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { seconds: { type: 'string', default: process.env.FUZZ_SECONDS ?? '60' }, target: { type: 'string', multiple: true }, keep: { type: 'boolean' } },
  });
  const seconds = Number(values.seconds);
  if (!(seconds > 0)) throw new Error(`--seconds must be a positive number, got ${values.seconds}`);
  const targets = (values.target ?? TARGETS) as TargetName[];
  for (const t of targets) if (!TARGETS.includes(t)) throw new Error(`unknown target ${t}; the targets are ${TARGETS.join(', ')}`);
  const results = await runFuzz({ seconds, targets, keep: values.keep ?? false, log: (line) => console.log(line) });
  const bad = results.filter((r) => r.crash !== null || r.executions === 0);
  if (bad.length > 0) {
    console.error(`fuzzing failed: ${bad.map((r) => r.target).join(', ')}`);
    process.exitCode = 1;
  }
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await main();
