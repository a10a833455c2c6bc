/**
 * `snapferry run`, for a systemd timer or cron: first, for every configured volume, a snapshot if one is due
 * (client/local/take.ts); then for each, a push of what the server lacks (client/push/push.ts) and pruning of local
 * snapshots (client/run/prune.ts). One summary line per volume; a failing volume does not stop the others; the exit code is the
 * most serious of the volumes' (client/exit-codes.ts). Runs never overlap (client/run/lock.ts).
 */
import fs from 'node:fs/promises';
import { describeError, ValidationError } from '../../core/errors.ts';
import { parseNameTime } from '../../core/snapshot-name.ts';
import { describePlan } from '../../core/retention.ts';
import type { RetentionPolicy } from '../../core/retention-policy.ts';
import { ServerApi } from '../http/api.ts';
import { EXIT, exitCodeFor } from '../exit-codes.ts';
import { formatBytes } from '../progress/format.ts';
import { pruneLocal } from './prune.ts';
import { previewPush } from './push-preview.ts';
import { push, type PushOptions } from '../push/push.ts';
import type { Reporter } from '../progress/report.ts';
import { acquireRunLock } from './lock.ts';
import { takeSnapshot, type SnapshotSettings } from '../local/take.ts';
import { createTransport } from '../http/transport.ts';
import type { VerifySetting } from '../config.ts';
import { verifyAfterPush } from '../verify/after-push.ts';
import { VerifyDifferences } from '../verify/check.ts';

/** What `run` needs of a configured volume (client/config.ts has the whole of it). */
export interface RunVolume extends SnapshotSettings {
  retention?: RetentionPolicy;
  verify?: VerifySetting | undefined;
}

/** What `run` needs of the client config. */
export interface RunConfig {
  server: string;
  volumes: Readonly<Record<string, RunVolume>>;
  /** Verify after each push (client/verify/after-push.ts); a volume's own `verify` wins. */
  verify?: VerifySetting | undefined;
}

export interface RunOptions {
  /** Take no snapshot, push nothing, delete nothing: say what would be done, and why each snapshot is kept. */
  dryRun?: boolean;
  /** A snapshot now, whatever snapshotEvery says. */
  force?: boolean;
  /** Only these volumes (--volume); default all. */
  only?: readonly string[];
  /** The run lock (client/run/lock.ts); null: none (for `snapshot`, which does not need one). */
  lockFile: string | null;
  now?: () => Date;
  signal?: AbortSignal;
  /** The token's header, sent on every request. */
  headers?: Record<string, string>;
  /** Settings of each push (rate limit, CA file, compression...). */
  push?: Omit<Partial<PushOptions>, 'server' | 'volume' | 'snapshots' | 'headers' | 'signal'>;
  /** The push's reporter for a volume (progress and notes). */
  reporter: (volume: string) => Reporter;
  /** A summary line (one per volume); default stdout. */
  summary?: (line: string) => void;
  /** Notes and --dry-run detail; default stderr. */
  note?: (line: string) => void;
  /** Which steps (default all three); `snapferry prune` runs only 'prune'. */
  steps?: readonly Step[];
  /** Where `verify:` keeps this machine's digests (client/verify/local-digests.ts); default its default. */
  digestCache?: string | null;
}

export type Step = 'snapshot' | 'push' | 'prune';

export interface VolumeResult {
  volume: string;
  /** The summary line, e.g. `home: snapshot home.20261125T013000Z, pushed 1 (12.3 MiB), pruned 2`. */
  line: string;
  exitCode: number;
  snapshot: string | null;
  pushed: number;
  pruned: string[];
}

/** Exit codes from least to most serious: a run reports the most serious of its volumes'. */
const SEVERITY: readonly number[] = [EXIT.ok, EXIT.temporary, EXIT.usage, EXIT.failed, EXIT.differences, EXIT.interrupted];

export function worstExit(a: number, b: number): number {
  return SEVERITY.indexOf(b) > SEVERITY.indexOf(a) ? b : a;
}

/**
 * Runs the steps for every selected volume under the run lock: every volume's snapshot, then each volume's push and
 * pruning. Throws RunLocked when another run holds the lock.
 */
export async function runVolumes(config: RunConfig, options: RunOptions): Promise<{ exitCode: number; volumes: VolumeResult[] }> {
  const names = selectVolumes(config, options.only);
  const note = options.note ?? ((line: string) => void process.stderr.write(`${line}\n`));
  const summary = options.summary ?? ((line: string) => void process.stdout.write(`${line}\n`));
  const lock = options.lockFile === null ? null : await acquireRunLock(options.lockFile);
  try {
    const api = new ServerApi({
      server: config.server,
      headers: options.headers ?? {},
      transport: createTransport(config.server, {
        ...(options.push?.caFile !== undefined ? { caFile: options.push.caFile } : {}),
        ...(options.push?.env ? { env: options.push.env } : {}),
      }),
      ...(options.signal ? { signal: options.signal } : {}),
      ...(options.push?.stallMs ? { stallMs: options.push.stallMs } : {}),
    });
    const steps = new Set<Step>(options.steps ?? ['snapshot', 'push', 'prune']);
    const runs = names.map((name) => startVolume(name, config.volumes[name]!));
    let exitCode: number = EXIT.ok;
    // Every volume's snapshot first, then the pushes: a long push of one volume (a first seed takes days) kept every
    // later volume from its snapshot for as long as it ran.
    if (steps.has('snapshot')) {
      for (const run of runs) {
        if (options.signal?.aborted === true) break;
        await snapshotStep(run, options);
      }
    }
    const results: VolumeResult[] = [];
    for (const run of runs) {
      if (options.signal?.aborted === true) {
        exitCode = worstExit(exitCode, EXIT.interrupted);
        break;
      }
      const result = await pushAndPrune(run, steps, config, api, options, note);
      summary(result.line);
      results.push(result);
      exitCode = worstExit(exitCode, result.exitCode);
    }
    return { exitCode, volumes: results };
  } finally {
    await lock?.release();
  }
}

function selectVolumes(config: RunConfig, only: readonly string[] | undefined): string[] {
  const all = Object.keys(config.volumes);
  if (all.length === 0) throw new ValidationError('the config has no volumes: add one under `volumes:`');
  if (only === undefined || only.length === 0) return all;
  const unknown = only.filter((v) => !all.includes(v));
  if (unknown.length > 0) throw new ValidationError(`no volume ${unknown.join(', ')} in the config; it has ${all.join(', ')}`);
  return [...only];
}

/** One volume's run as its steps go: what each said so far (its summary line's parts) and the result. */
interface VolumeRun {
  name: string;
  volume: RunVolume;
  parts: string[];
  result: VolumeResult;
}

function startVolume(name: string, volume: RunVolume): VolumeRun {
  return { name, volume, parts: [], result: { volume: name, line: '', exitCode: EXIT.ok, snapshot: null, pushed: 0, pruned: [] } };
}

function failedStep(run: VolumeRun, what: string, err: unknown): void {
  run.parts.push(`${what} failed: ${describeError(err)}`);
  run.result.exitCode = worstExit(run.result.exitCode, exitCodeFor(err));
}

/** A snapshot of the volume if one is due (client/local/take.ts). */
async function snapshotStep(run: VolumeRun, options: RunOptions): Promise<void> {
  const dryRun = options.dryRun === true;
  const now = options.now ?? (() => new Date());
  const signal = options.signal ? { signal: options.signal } : {};
  try {
    const taken = await takeSnapshot(run.name, run.volume, { force: options.force ?? false, dryRun, now: now(), ...signal });
    run.result.snapshot = taken.taken;
    run.parts.push(taken.taken === null ? `no snapshot (${taken.why})` : `${dryRun ? 'would snapshot' : 'snapshot'} ${taken.taken}`);
  } catch (err) {
    failedStep(run, 'snapshot', err);
  }
}

/** The volume's push (and verify) and pruning, once every volume's snapshot is taken; returns its result, line and all. */
async function pushAndPrune(run: VolumeRun, steps: ReadonlySet<Step>, config: RunConfig, api: ServerApi, options: RunOptions, note: (line: string) => void): Promise<VolumeResult> {
  const { name, volume, parts, result } = run;
  const dryRun = options.dryRun === true;
  const now = options.now ?? (() => new Date());
  const failed = (what: string, err: unknown) => failedStep(run, what, err);
  const signal = options.signal ? { signal: options.signal } : {};
  /** Snapshots whose server copy verify found different: prune keeps them. */
  const differs: string[] = [];

  if (steps.has('push') && dryRun) {
    try {
      const reporter = options.reporter(name);
      const preview = await previewPush(
        { ...options.push, server: config.server, volume: name, snapshots: [volume.snapshotDir], snapshotDir: true, headers: options.headers ?? {}, ...signal },
        reporter, result.snapshot, await holdsSnapshotsOf(name, volume.snapshotDir),
      ).finally(() => reporter.close?.());
      for (const line of preview.lines) note(`${name}: ${line}`);
      parts.push(preview.part);
    } catch (err) {
      failed('push', err);
    }
  }

  if (steps.has('push') && !dryRun) {
    try {
      if (!(await holdsSnapshotsOf(name, volume.snapshotDir))) {
        parts.push('nothing to push');
      } else {
        const reporter = options.reporter(name);
        // What `push --config` pushes: every read-only snapshot of the volume in its folder, those taken by hand or by
        // btrbk too (VOLUME.<date> in any of the forms push reads), not only run's own. With its own alone, run sent
        // its new snapshot on the older parent and every later push skipped the one taken between as older than the
        // server's newest: never sent, and nothing said so.
        const pushed = await push(
          { ...options.push, server: config.server, volume: name, snapshots: [volume.snapshotDir], snapshotDir: true, headers: options.headers ?? {}, ...signal },
          reporter,
        ).finally(() => reporter.close?.());
        result.pushed = pushed.sent.length;
        const wire = pushed.sent.reduce((n, s) => n + s.transfer.wireOffset, 0);
        parts.push(pushed.sent.length === 0 ? 'pushed 0 (the server holds the newest)' : `pushed ${pushed.sent.length} (${formatBytes(wire)})`);
        const setting = volume.verify !== undefined ? volume.verify : config.verify;
        if (setting) {
          try {
            parts.push(await verifyAfterPush({
              server: config.server, volume: name, snapshotDir: volume.snapshotDir, setting, headers: options.headers ?? {}, note, ...signal,
              stateFile: options.lockFile === null ? null : `${options.lockFile}.verify.json`,
              ...(options.digestCache !== undefined ? { digestCache: options.digestCache } : {}),
              ...(options.push?.caFile !== undefined ? { caFile: options.push.caFile } : {}),
              ...(options.push?.env ? { env: options.push.env } : {}),
              ...(options.push?.stallMs ? { stallMs: options.push.stallMs } : {}),
            }));
          } catch (err) {
            failed('verify', err);
            if (err instanceof VerifyDifferences) differs.push(...differingSnapshots(err));
          }
        }
      }
    } catch (err) {
      failed('push', err);
    }
  }

  if (steps.has('prune')) {
    try {
      const encrypt = options.push?.encrypt !== undefined ? { encrypt: options.push.encrypt } : {};
      const pruned = await pruneLocal(api, name, volume, { dryRun, now: now(), differs, ...signal, ...encrypt });
      for (const line of pruned.notes) note(`${name}: ${line}`);
      if (dryRun) for (const line of describePlan(pruned.plan)) note(`${name}: ${line}`);
      result.pruned = pruned.deleted;
      parts.push(`${dryRun ? 'would prune' : 'pruned'} ${pruned.deleted.length}`);
      for (const f of pruned.failed) {
        parts.push(`could not delete ${f.name}: ${f.error}`);
        result.exitCode = worstExit(result.exitCode, EXIT.failed);
      }
    } catch (err) {
      // Without the server's word, nothing is deleted: it alone knows which snapshot the next incremental needs.
      failed('prune', err);
    }
  }
  result.line = `${name}: ${parts.join(', ')}`;
  return result;
}

/**
 * Whether `dir` holds a snapshot named after `volume` (VOLUME.<date>, in any form push reads). Without one there is
 * nothing of this volume to push, and a push of the folder would take whatever it holds (another volume's snapshots
 * in a shared folder) for this volume's.
 */
async function holdsSnapshotsOf(volume: string, dir: string): Promise<boolean> {
  const names = await fs.readdir(dir).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return [];
    throw err;
  });
  return names.some((n) => parseNameTime(n, 'local')?.prefix === volume);
}

/** The snapshots a VerifyDifferences names (its details, as client/verify/verify.ts makes them). */
function differingSnapshots(err: VerifyDifferences): string[] {
  const named = err.details['snapshots'];
  return Array.isArray(named) ? named.filter((n): n is string => typeof n === 'string') : [];
}
