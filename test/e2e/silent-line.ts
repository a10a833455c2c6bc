/**
 * A push over a line that goes silent (issue 16), for the silent-line-*.test.ts files: `snapferry serve` runs inside
 * the network namespace of a shaped line (test/fixtures/shaped-line.ts), 2 Mbit/s from client to server, and
 * `snapferry push` runs as a process in the root namespace, reaching it over the line. Both are real processes, so a
 * push that hangs can be killed, and a test can kill either with SIGKILL.
 *
 * The test's own eyes stay off the line: it reads where the server stands from the server's root on disk (the frame
 * index and the catalog), so that nothing it does crosses the line, is silenced with it, or is counted as the push's.
 * What the push sent is the line's own count of what crossed it upstream (shaped-line.ts).
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import * as btrfs from '../../core/btrfs/index.ts';
import { FRAME_HEADER_SIZE } from '../../core/wire/index.ts';
import { readLastRecord, type IndexRecord } from '../../server/spool/frame-index.ts';
import { ServerLayout } from '../../server/layout.ts';
import { addClient } from '../../server/tokens.ts';
import { createShapedLine, type LineCount, type ShapedLine } from '../fixtures/shaped-line.ts';
import { assertReceived, createPair, framedLength, until, type Pair } from './harness.ts';
import { ChildProcesses, type ServeProcess, type SnapferryProcess } from './processes.ts';

/** The push's --stall-timeout: short, so that each test spends little time waiting for it. */
export const STALL_SECONDS = 8;
/** The server's --idle-timeout for request bodies: shorter than the push's, as a server's should be. */
export const IDLE_SECONDS = 5;
/** The time a push may lose beyond a silence: its stall timeout, plus a retry's backoff (at most 15 s) and the resume. */
export const LOST_SECONDS = STALL_SECONDS + 20;
export const CHUNK = 64 * 1024;
/** One frame of `--compress none`: what an interruption may cost, the frame that was in flight. */
export const FRAME_BYTES = CHUNK + FRAME_HEADER_SIZE;
export const UP_KBIT = 2000;
export const DOWN_KBIT = 8000;
/** TCP payload per second on the line upstream: 1448 bytes in each 1514-byte frame (shaped-line.ts). */
export const PAYLOAD_PER_SECOND = ((UP_KBIT * 1000) / 8) * (1448 / 1514);
/**
 * The requests' own bytes for a whole push: headers, JSON, the polls while the server receives (a push makes a
 * dozen or two requests of a few hundred bytes each; 5-8 KB were measured).
 */
export const REQUESTS_BYTES = 16 * 1024;
const PORT = 8443;
/**
 * What a push says when it resumed an upload from the server's offset: its own loop ("resuming at N (frame F); the
 * rest was only hashed") or tus-js-client's retry within an attempt ("resuming from the server's offset").
 */
export const RESUMED = /resuming at .*the rest was only hashed, not sent|resuming from the server's offset/;

/** The part of the server's catalog record of a transfer (server/catalog.ts) that the tests read. */
export interface TransferOnDisk {
  id: string;
  state: string;
  interruptions: number;
  /** Set once the upload completed (its spool may be gone then). */
  wireBytes: number | null;
}

export interface SilentLineWorld {
  children: ChildProcesses;
  pair: Pair;
  line: ShapedLine;
  s1: string;
  /** The framed stream's length: what an uninterrupted push uploads. */
  wire: number;
  /** The push's --chunk-size, and one whole frame of it (`--compress none`). */
  chunk: number;
  frameBytes: number;
  /** The client's HOME and working directory: empty, as a push keeps no state of its own. */
  home: string;
  /** Starts `snapferry serve` inside the namespace, with a short --idle-timeout. */
  serve(): Promise<ServeProcess>;
  /** Starts `snapferry push` of s1 over the line, with a short --stall-timeout. */
  push(): SnapferryProcess;
  /** The server's last verified frame, read from its root (null before the first, and once the spool is gone). */
  held(): Promise<IndexRecord | null>;
  /** The end of the server's last verified frame, or once the spool is gone (received), the stream's length. */
  heldBytes(): Promise<number>;
  /** The size of the server's spool file: its verified frames and the part of a frame after them (0 once it is gone). */
  spoolBytes(): Promise<number>;
  /** The server's catalog record of the transfer (null before it exists). */
  transfer(): Promise<TransferOnDisk | null>;
}

export interface WorldOptions {
  seed: string;
  randomMB: number;
  /** The push's --chunk-size in bytes (CHUNK unless given). */
  chunk?: number;
  /** The line's rate upstream (UP_KBIT unless given). */
  upKbit?: number;
}

/**
 * A client and server btrfs, s1 (a varied tree and `randomMB` of random data: `--compress none` frames it byte for
 * byte, and random bytes would not compress anyway), a line at 2 Mbit/s up (unless told) and 8 down, and a client
 * token.
 */
export async function silentLineWorld(t: TestContext, options: WorldOptions): Promise<SilentLineWorld> {
  // First: its after hook kills the processes before the filesystems they use are unmounted.
  const children = new ChildProcesses(t);
  const pair = await createPair(t, { fillMB: 1, seed: options.seed, clientMiB: 256, serverMiB: 256 });
  await fs.writeFile(path.join(pair.source, 'random.bin'), crypto.randomBytes(options.randomMB * 1024 * 1024));
  const s1 = await pair.snapshot('s1');
  const chunk = options.chunk ?? CHUNK;
  const wire = await framedLength(s1, chunk, 0);
  const line = await createShapedLine(t, { upKbit: options.upKbit ?? UP_KBIT, downKbit: DOWN_KBIT });

  const dir = await fs.mkdtemp(path.join(os.tmpdir(), `snapferry-e2e-line-${process.pid}-`));
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  const tokensFile = path.join(dir, 'tokens.json');
  const tokenFile = path.join(dir, 'alice.token');
  await fs.writeFile(tokenFile, `${(await addClient(tokensFile, 'alice')).token}\n`, { mode: 0o600 });
  const home = path.join(dir, 'home');
  await fs.mkdir(home);

  const layout = new ServerLayout(pair.root);
  const transfer = async () => {
    const text = await fs.readFile(layout.catalog, 'utf8').catch(() => null);
    const transfers = text === null ? [] : (JSON.parse(text) as { transfers: TransferOnDisk[] }).transfers;
    assert.ok(transfers.length <= 1, `one transfer at most: ${transfers.map((x) => `${x.id} ${x.state}`).join(', ')}`);
    return transfers[0] ?? null;
  };
  let url = '';
  return {
    children, pair, line, s1, wire, chunk, frameBytes: chunk + FRAME_HEADER_SIZE, home,
    async serve() {
      const server = await children.serve({
        root: pair.root, host: line.hostAddress, port: PORT, netns: line.namespace, tokensFile,
        args: ['--idle-timeout', `${IDLE_SECONDS}s`],
      });
      url = server.url;
      return server;
    },
    push() {
      const env = { HOME: home, XDG_CONFIG_HOME: path.join(home, '.config'), XDG_CACHE_HOME: path.join(home, '.cache') };
      const args = ['push', '--server', url, '--volume', 'v', '--chunk-size', String(chunk), '--compress', 'none', '--stall-timeout', `${STALL_SECONDS}s`, '--token-file', tokenFile, s1];
      return children.run(args, { cwd: home, env });
    },
    async held() {
      const x = await transfer();
      return x === null ? null : readLastRecord(layout.frameIndexFile(x.id));
    },
    async heldBytes() {
      const x = await transfer();
      if (x === null) return 0;
      return x.wireBytes ?? (await readLastRecord(layout.frameIndexFile(x.id)))?.wireEnd ?? 0;
    },
    async spoolBytes() {
      const x = await transfer();
      return x === null ? 0 : ((await fs.stat(layout.spoolFile(x.id)).catch(() => null))?.size ?? 0);
    },
    transfer,
  };
}

/** Waits until the server holds `bytes` of the stream; fails if the push exits first. */
export async function untilHeld(world: SilentLineWorld, push: SnapferryProcess, bytes: number): Promise<IndexRecord> {
  return until(`the server to hold ${bytes} B`, async () => {
    if (!push.running) throw new Error(`the push exited (${JSON.stringify(await push.exited)}) before the server held ${bytes} B:\n${push.stderr}`);
    const last = await world.held();
    return last !== null && last.wireEnd >= bytes ? last : undefined;
  }, 60_000, 20);
}

/**
 * Waits until the server holds `bytes`, then for most of a frame's time on the line: a silence that begins then
 * cuts a frame well into it, the most an interruption can cost. (Right after the server verified a frame, it would
 * cost almost nothing, and the bytes re-sent would prove little.)
 */
export async function untilMidFrame(world: SilentLineWorld, push: SnapferryProcess, bytes: number): Promise<IndexRecord> {
  const held = await untilHeld(world, push, bytes);
  await sleep(((FRAME_BYTES * 0.6) / PAYLOAD_PER_SECOND) * 1000);
  return held;
}

/** A silence as the test saw it: when it began and ended, and what the server held then. */
export interface Silence {
  /** performance.now() when the line spoke again. */
  spokeAt: number;
  heldBefore: number;
  heldAfter: number;
  /** The transfer's interruptions, as the server's catalog counted them when the line spoke again. */
  interruptionsAfter: number;
}

export interface SilenceOptions {
  /** Meanwhile. */
  during?: () => Promise<void>;
  /**
   * The line also forgets the connections open when it falls silent, as a NAT that lost its state: they stay dead
   * when it speaks again. (Otherwise TCP, retransmitting, carries on with them once the line speaks, and a client
   * that never gave up on a silent request does not hang, only loses time.)
   */
  forget?: boolean;
}

/** Silences the line for `ms`, then lets it speak. */
export async function silenceFor(world: SilentLineWorld, ms: number, options: SilenceOptions = {}): Promise<Silence> {
  const heldBefore = await world.heldBytes();
  await world.line.silence();
  const end = performance.now() + ms;
  if (options.forget) await world.line.forget();
  const during = options.during ?? (async () => {});
  await during();
  await sleep(Math.max(0, end - performance.now()));
  const heldAfter = await world.heldBytes();
  const interruptionsAfter = (await world.transfer())?.interruptions ?? 0;
  await world.line.speak();
  return { spokeAt: performance.now(), heldBefore, heldAfter, interruptionsAfter };
}

/**
 * The push must exit 0 within what the rest of the stream takes at the line's rate plus LOST_SECONDS after the line
 * spoke again: a push that hangs fails here, with what it said, instead of running into the test's timeout.
 */
/** The client dies with SIGKILL (its btrfs send with it) and loses its HOME: all a push keeps, which is nothing. */
export async function killClient(world: SilentLineWorld, push: SnapferryProcess): Promise<void> {
  assert.equal((await push.kill9()).signal, 'SIGKILL');
  assert.ok(await push.groupGone(10_000), 'the push\'s btrfs send ended with it');
  await fs.rm(world.home, { recursive: true, force: true });
  await fs.mkdir(world.home);
}

export async function assertPushFinishes(t: TestContext, world: SilentLineWorld, push: SnapferryProcess, silence: Silence): Promise<void> {
  const restSeconds = (world.wire - silence.heldAfter) / PAYLOAD_PER_SECOND;
  const deadline = silence.spokeAt + (restSeconds + LOST_SECONDS) * 1000;
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<'hung'>((resolve) => (timer = setTimeout(() => resolve('hung'), deadline - performance.now())));
  const exit = await Promise.race([push.exited, hung]).finally(() => clearTimeout(timer));
  const after = (performance.now() - silence.spokeAt) / 1000;
  t.diagnostic(`push ${exit === 'hung' ? 'still running' : 'exited'} ${after.toFixed(1)} s after the line spoke again; the rest of the stream takes ${restSeconds.toFixed(1)} s`);
  t.diagnostic(`push said: ${push.stderr.trim().split('\n').join(' | ')}`);
  if (exit === 'hung') {
    assert.fail(`the push hung: still running ${after.toFixed(0)} s after the line spoke again (${LOST_SECONDS} s allowed beyond the ${restSeconds.toFixed(0)} s the rest takes)`);
  }
  assert.deepEqual(exit, { code: 0, signal: null }, `the push failed:\n${push.stderr}`);
}

/** s1 arrived whole and read-only, and the server holds exactly the stream one uninterrupted push makes. */
export async function assertArrived(world: SilentLineWorld): Promise<void> {
  const x = await world.transfer();
  assert.equal(x?.state, 'received');
  // The client is alice (a token: --no-auth is for loopback only), not the 'default' of pair.receivedPath().
  const received = path.join(world.pair.root, 'volumes', 'alice', 'v', 's1');
  await assertReceived(world.s1, received);
  assert.equal(await btrfs.getReadonly(received), true, 'the received snapshot is read-only');
}

/**
 * What crossed the line upstream since `before`: the framed stream, and at most one frame per interruption sent
 * twice, plus the requests' own bytes, those of each push run (one that starts again after a kill asks for the plan,
 * the upload and its frame 0 again, and polls its receive anew). (What sat in the line's queue when it fell silent
 * never crossed: a silence drops it, shaped-line.ts.)
 */
export function assertSentOnce(t: TestContext, world: SilentLineWorld, before: LineCount, after: LineCount, interruptions: number, pushes = 1): void {
  const crossed = after.payload - before.payload;
  const budget = world.wire + interruptions * world.frameBytes + pushes * REQUESTS_BYTES;
  t.diagnostic(
    `${crossed} B of payload crossed upstream for a ${world.wire} B stream: ${crossed - world.wire} B more, ` +
      `${interruptions} interruption(s) (a frame each) and ${pushes} push run(s) (their requests) allowed ${budget - world.wire} B more`,
  );
  assert.ok(crossed >= world.wire, 'at least the whole stream crossed');
  assert.ok(crossed <= budget, `${crossed} B crossed, more than the ${budget} B allowed: more than a frame per interruption was sent twice`);
}

/** The `btrfs receive` the server process `serverPid` runs (its child), or null. */
export async function receiveOf(serverPid: number): Promise<number | null> {
  for (const entry of await fs.readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await fs.readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '');
    // pid (comm) state ppid ...: comm may hold spaces, so the fields after it are found from the last ')'.
    const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    if (comm === 'btrfs' && ppid === serverPid) return Number(entry);
  }
  return null;
}
