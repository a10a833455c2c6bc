/**
 * How the bench measures: wall time, CPU time and peak RSS of processes it does not run in its own process.
 *
 * CPU comes from the kernel's accounting, never from sampling: /proc/PID/stat (utime + stime of the process, plus
 * cutime + cstime of the children it has waited for) for long-running daemons (snapferry serve, sshd, nginx),
 * read before and after a run; bash's `times` builtin for shell pipelines (the CPU of the pipeline's processes,
 * which bash waited for); probe.mjs for snapferry push (its own CPU and peak RSS, and its waited-for btrfs send).
 */
import { readFile, readdir } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { execa } from 'execa';

export const PROBE = path.join(import.meta.dirname, 'probe.mjs');

/** What probe.mjs wrote when its process exited. */
export interface ProbeReport {
  maxRssBytes: number;
  /** The process's own CPU plus that of the children it waited for (btrfs send / receive). */
  cpuSeconds: number;
}

/** Environment that makes a node process write a ProbeReport to `file` when it exits. */
export function probeEnv(file: string): Record<string, string> {
  // SNAPFERRY_BENCH_NODE_OPTIONS: more node options for every snapferry process (a preload that profiles serve, a
  // V8 flag to try), read when each process starts.
  const more = process.env.SNAPFERRY_BENCH_NODE_OPTIONS ?? '';
  return { NODE_OPTIONS: `--import=${pathToFileURL(PROBE).href}${more ? ` ${more}` : ''}`, SNAPFERRY_BENCH_PROBE: file };
}

export async function readProbe(file: string): Promise<ProbeReport> {
  const raw = JSON.parse(await readFile(file, 'utf8')) as { maxRssKiB: number; selfCpuSeconds: number; childTicks: number };
  return { maxRssBytes: raw.maxRssKiB * 1024, cpuSeconds: raw.selfCpuSeconds + raw.childTicks / (await clockTicks()) };
}

let ticks: Promise<number> | null = null;

/** USER_HZ: the unit of the times in /proc/PID/stat. */
export function clockTicks(): Promise<number> {
  ticks ??= execa('getconf', ['CLK_TCK']).then((r) => Number(r.stdout.trim()) || 100);
  return ticks;
}

/** CPU seconds of a live process: its own and its waited-for children's (fields 14-17 of /proc/PID/stat). */
export async function processCpuSeconds(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const sum = [11, 12, 13, 14].reduce((total, i) => total + Number(fields[i]), 0);
  return sum / (await clockTicks());
}

/** Pids of a process's live children (every thread's list: a child belongs to the thread that forked it). */
export async function childrenOf(pid: number): Promise<number[]> {
  const tasks = await readdir(`/proc/${pid}/task`).catch(() => [] as string[]);
  const lists = await Promise.all(tasks.map((t) => readFile(`/proc/${pid}/task/${t}/children`, 'utf8').catch(() => '')));
  return lists.flatMap((l) => l.split(' ').filter((s) => s.length > 0).map(Number));
}

/**
 * Waits until `pid` has no live child whose command name (/proc/CHILD/comm) matches `name`, so that /proc/PID/stat
 * counts all of their CPU: a daemon reaps a finished session a moment after its client saw the end. (A filter,
 * because a node process under tsx keeps an esbuild service child for its whole life.) False after `timeoutMs`.
 */
export async function childrenReaped(pid: number, name: RegExp, timeoutMs = 10_000): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const names = await Promise.all((await childrenOf(pid)).map((child) => readFile(`/proc/${child}/comm`, 'utf8').catch(() => '')));
    if (!names.some((n) => name.test(n.trim()))) return true;
    if (Date.now() > end) return false;
    await sleep(20);
  }
}

export interface ShellRun {
  seconds: number;
  /** CPU of every process the script ran and waited for (bash's `times`, second line). */
  cpuSeconds: number;
  stdout: string;
}

/**
 * Runs a bash script (pipefail on), timing it, and counting the CPU of what it ran with bash's `times`. Arguments
 * are passed as $1, $2... (never pasted into the script). Throws with its stderr when it fails.
 */
export async function timedShell(script: string, args: readonly string[]): Promise<ShellRun> {
  const wrapped = `set -o pipefail\n${script}\nstatus=$?\ntimes >&3\nexit $status`;
  const started = performance.now();
  const result = await execa('bash', ['-c', wrapped, 'bench', ...args], { stdio: ['ignore', 'pipe', 'pipe', 'pipe'], reject: false });
  const seconds = (performance.now() - started) / 1000;
  if (result.exitCode !== 0) throw new Error(`bash -c '${script}' ${args.join(' ')} failed (${result.exitCode ?? result.signal}): ${result.stderr}`);
  return { seconds, cpuSeconds: parseTimes(result.stdio[3]), stdout: result.stdout };
}

/** bash `times`: "0m0.001s 0m0.002s\n1m2.500s 0m3.250s\n": the second line is the children's user and system. */
export function parseTimes(output: string): number {
  const line = output.trim().split('\n')[1] ?? '';
  const spans = [...line.matchAll(/(\d+)m([\d.]+)s/g)];
  if (spans.length !== 2) throw new Error(`cannot read bash times output: ${JSON.stringify(output)}`);
  return spans.reduce((total, m) => total + Number(m[1]) * 60 + Number(m[2]), 0);
}

/** Seconds that `fn` took. */
export async function timed<T>(fn: () => Promise<T>): Promise<{ seconds: number; value: T }> {
  const started = performance.now();
  const value = await fn();
  return { seconds: (performance.now() - started) / 1000, value };
}

/** Decimal megabytes per second, as the issue quotes them. */
export function mbps(bytes: number, seconds: number): number {
  return bytes / 1e6 / seconds;
}

/** CPU seconds per decimal gigabyte of raw send stream. */
export function perGB(cpuSeconds: number, rawBytes: number): number {
  return cpuSeconds / (rawBytes / 1e9);
}
