/**
 * The silent line (issue 16): `snapferry push` over a shaped line (test/fixtures/shaped-line.ts), 2 Mbit/s up and
 * 8 down, to `snapferry serve` inside the line's namespace, with what a user gets by default: --stall-timeout 30 s,
 * the server's --idle-timeout 60 s. `--compress none`, so that every push moves the same bytes. First a push with no
 * silence (its time T0); then, for each of the scale's silences, a push during which the line falls silent once,
 * partway into the upload (some silences also make the line forget the connections open then, as a NAT that lost its
 * state). What a silence costs is the push's time T less T0 less the silence itself: the seconds lost beyond it.
 *
 * Every push has a line and a server root of its own, taken down after it: nothing a silence leaves (a forgotten
 * connection, a half-read request, a spool) carries into the next. The bench's own eyes stay off the line: it reads
 * the line's counters in the line's namespace, and sends nothing over it while a push runs.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { DEFAULT_STALL_MS } from '../../client/http/transport.ts';
import { DEFAULT_IDLE_TIMEOUT_MS } from '../../server/serve.ts';
import { createShapedLine, type LineRates, type ShapedLine } from '../fixtures/shaped-line.ts';
import type { LanContext } from './lan.ts';
import type { Scale, SilenceSpec } from './options.ts';
import { BenchServer, createToken, removeServerRoot, runPush, type ClientToken } from './snapferry.ts';
import { settle } from './world.ts';

/** The silence begins this fraction of T0 after the push starts: well into the upload, before its end. */
export const SILENCE_AT = 0.5;
/** Server to client: the answers, faster than the upload, as on DSL. */
const DOWN_KBIT = 8000;
/** Inside the line's own namespace: nothing else listens there. */
const PORT = 8443;
/** Upstream payload after the line speaks again that counts as the upload moving (requests alone are smaller). */
const MOVING_BYTES = 64 * 1024;

/** One push over the line. */
export interface LinePush {
  seconds: number;
  /** TCP payload that crossed the line upstream during the push (requests and re-sent bytes included). */
  upstreamBytes: number;
  /** The interruptions the push reported once the server had the snapshot. */
  interruptions: number;
}

/** A push during which the line fell silent once. */
export interface SilentPush extends LinePush {
  silence: SilenceSpec;
  /** Seconds after the push started that the line fell silent. */
  silentAfter: number;
  /** Seconds the line was silent, as it happened (the tc commands take a few milliseconds). */
  silentSeconds: number;
  /** Upstream payload that had crossed when the line fell silent. */
  crossedBeforeSilence: number;
  /** Seconds from the line speaking again until the upload moved (MOVING_BYTES crossed); null if it never did. */
  movingAfter: number | null;
  /** What the push said meanwhile (its `note:` lines: stalls, retries, resumes). */
  notes: string[];
}

/** A silence whose push did not finish, or did not have the silence fall during its upload. */
export interface SilentFailure {
  silence: SilenceSpec;
  failed: string;
}

export interface SilentLineResult {
  rawBytes: number;
  /** The framed stream: what a push uploads. */
  wireBytes: number;
  rates: LineRates;
  /** The push's --stall-timeout (its default) and the server's --idle-timeout (its default). */
  stallSeconds: number;
  idleSeconds: number;
  silenceAt: number;
  baseline: LinePush;
  silences: Array<SilentPush | SilentFailure>;
}

export async function runSilentLine(ctx: LanContext, scale: Scale): Promise<SilentLineResult> {
  const rates: LineRates = { upKbit: (scale.linkBytesPerSecond * 8) / 1000, downKbit: DOWN_KBIT };
  const dir = await mkdtemp(path.join(os.tmpdir(), `snapferry-bench-silent-${process.pid}-`));
  ctx.cleanup.after(() => rm(dir, { recursive: true, force: true }));
  // A token: --no-auth is for loopback only, and the server listens on the line's far end.
  const token = await createToken(dir);

  ctx.say(`silent line: snapferry push --compress none at ${rates.upKbit / 1000} Mbit/s up, no silence`);
  const first = await pushOverLine(ctx, rates, token, 'baseline', null);
  const baseline = first.push;
  ctx.say(`  ${baseline.seconds.toFixed(1)} s, ${mb(baseline.upstreamBytes)} upstream for a ${mb(first.wireBytes)} upload`);

  const silences: SilentLineResult['silences'] = [];
  for (const [i, spec] of scale.silences.entries()) {
    const schedule: Schedule = {
      spec,
      afterSeconds: baseline.seconds * SILENCE_AT,
      // A push still running this long after T0 and the silence has hung: it fails the row, not the bench.
      timeoutMinutes: Math.ceil((baseline.seconds + spec.seconds) / 60) + 10,
    };
    ctx.say(`silent line: ${spec.seconds} s silence${spec.forget ? ', the connections forgotten' : ''}, ${schedule.afterSeconds.toFixed(1)} s into the push`);
    try {
      const s = silentPush(spec, await pushOverLine(ctx, rates, token, `silence-${i}`, schedule));
      ctx.say(
        `  ${s.seconds.toFixed(1)} s: ${(s.seconds - baseline.seconds - s.silentSeconds).toFixed(1)} s lost beyond the silence; ` +
          `silent after ${mb(s.crossedBeforeSilence)} had crossed; ` +
          `moving ${s.movingAfter === null ? 'never' : `${s.movingAfter.toFixed(1)} s`} after the line spoke; ` +
          `${mb(s.upstreamBytes - baseline.upstreamBytes)} more upstream than with no silence; ${s.interruptions} interruption(s)`,
      );
      for (const note of s.notes) ctx.say(`  push: ${note}`);
      silences.push(s);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      ctx.say(`silent line: ${spec.seconds} s silence FAILED: ${message}`);
      silences.push({ silence: spec, failed: message });
    }
  }
  return {
    rawBytes: ctx.world.silent.rawBytes,
    wireBytes: first.wireBytes,
    rates,
    stallSeconds: DEFAULT_STALL_MS / 1000,
    idleSeconds: DEFAULT_IDLE_TIMEOUT_MS / 1000,
    silenceAt: SILENCE_AT,
    baseline,
    silences,
  };
}

function mb(bytes: number): string {
  return `${(bytes / 1e6).toFixed(2)} MB`;
}

interface Schedule {
  spec: SilenceSpec;
  /** Seconds after the push starts. */
  afterSeconds: number;
  timeoutMinutes: number;
}

/** What the line, the push and the server saw of one push. */
interface LineRun {
  push: LinePush;
  /** The upload's final length, as the server lists it. */
  wireBytes: number;
  /** The silence as it happened; null without one, or when the push ended before it was due. */
  window: Window | null;
  notes: string[];
}

/** A push that had its silence during the upload, or the reason it does not count. */
function silentPush(spec: SilenceSpec, run: LineRun): SilentPush {
  const { push, window, notes } = run;
  if (window === null) throw new Error(`the push ended ${push.seconds.toFixed(1)} s in, before its silence was due`);
  if (window.cutShort) throw new Error(`the push ended ${push.seconds.toFixed(1)} s in, during its silence: the silence did not fall during the upload`);
  const { silentAfter, silentSeconds, crossedBeforeSilence, movingAfter } = window;
  return { ...push, silence: spec, silentAfter, silentSeconds, crossedBeforeSilence, movingAfter, notes };
}

/**
 * A push of the silent-line stream over a line and to a server of its own, silenced on `schedule` when given. The
 * default stall and idle timeouts: neither command is told one.
 */
async function pushOverLine(ctx: LanContext, rates: LineRates, token: ClientToken, name: string, schedule: Schedule | null): Promise<LineRun> {
  const root = path.join(ctx.world.server.mountPoint, `root-silent-${name}`);
  await settle(ctx.world.server);
  const line = await createShapedLine(ctx.cleanup, rates);
  let silent: Promise<Window | null> = Promise.resolve(null);
  try {
    // At 2 Mbit/s logging costs nothing, and the server's account of each silence is what a failure needs.
    const server = await BenchServer.start(ctx.cleanup, ctx.probes, {
      root, host: line.hostAddress, port: PORT, netns: line.namespace, auth: token, behindProxy: false, logLevel: 'info',
    });
    try {
      const before = (await line.upstream()).payload;
      const pushing = new AbortController();
      const started = performance.now();
      if (schedule !== null) {
        silent = silenceDuring(line, schedule, started, pushing.signal);
        // Awaited below; until then a failed tc command must not be an unhandled rejection that ends the bench.
        silent.catch(() => undefined);
      }
      const run = await runPush(ctx.cleanup, ctx.probes, {
        target: server, volume: 'bench', snapshot: ctx.world.silent.snapshot, compress: 'none', tokenFile: token.tokenFile,
        timeoutMs: (schedule?.timeoutMinutes ?? 10) * 60_000,
      }).finally(() => pushing.abort());
      const window = await silent;
      const push: LinePush = {
        seconds: run.seconds,
        upstreamBytes: (await line.upstream()).payload - before,
        interruptions: Number(/resumed after (\d+) interruption/.exec(run.stderr)?.[1] ?? 0),
      };
      // The push is over: the bench may use the line now, to ask the server for the upload's length.
      const snapshot = path.basename(ctx.world.silent.snapshot);
      const transfer = (await server.transfers()).find((t) => t.snapshot === snapshot && t.state === 'received');
      if (transfer === undefined) throw new Error(`the server lists no received transfer of ${snapshot}`);
      const notes = run.stderr.split('\n').filter((l) => l.startsWith('note: ')).map((l) => l.slice('note: '.length));
      return { push, wireBytes: transfer.wireOffset, window: window && { ...window, crossedBeforeSilence: window.crossedBeforeSilence - before }, notes };
    } finally {
      // A failure above is the error to report, not a server that then failed to stop.
      await server.stop().catch(() => undefined);
    }
  } finally {
    // The silence's own steps end before the line they act on goes.
    await silent.catch(() => null);
    await line.close();
    await removeServerRoot(root);
  }
}

interface Window {
  /** Seconds after the push started. */
  silentAfter: number;
  silentSeconds: number;
  /** The line's upstream payload when it fell silent. */
  crossedBeforeSilence: number;
  movingAfter: number | null;
  /** The push ended while the line was silent: it spoke at once. */
  cutShort: boolean;
}

/**
 * Silences the line `schedule.afterSeconds` after `started` for the silence's length (forgetting the connections
 * open then, if asked), then watches the line's upstream counter until the upload moves again. Null when the push
 * ended (`pushing` aborted) before the silence was due; never rejects on the abort.
 */
async function silenceDuring(line: ShapedLine, schedule: Schedule, started: number, pushing: AbortSignal): Promise<Window | null> {
  const until = (at: number): Promise<boolean> =>
    sleep(Math.max(0, at - performance.now()), undefined, { signal: pushing }).then(() => true, () => false);
  if (!(await until(started + schedule.afterSeconds * 1000))) return null;
  const crossedBeforeSilence = (await line.upstream()).payload;
  await line.silence();
  const silentAt = performance.now();
  if (schedule.spec.forget) await line.forget();
  const cutShort = !(await until(silentAt + schedule.spec.seconds * 1000));
  await line.speak();
  const spokeAt = performance.now();
  const window = { silentAfter: (silentAt - started) / 1000, silentSeconds: (spokeAt - silentAt) / 1000, crossedBeforeSilence, cutShort };
  const spoke = (await line.upstream()).payload;
  while (!pushing.aborted) {
    if ((await line.upstream()).payload - spoke >= MOVING_BYTES) return { ...window, movingAfter: (performance.now() - spokeAt) / 1000 };
    await sleep(200);
  }
  return { ...window, movingAfter: null };
}
