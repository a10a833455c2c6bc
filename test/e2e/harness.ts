/**
 * A client filesystem and a server filesystem (both real btrfs on loop files) and a real snapferry server on a free
 * loopback port, all taken down after the test, pass or fail.
 */
import path from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { FirstCommandRenamer, FrameEncoder, stableNaming } from '../../core/wire/index.ts';
import { appendFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import { addClient } from '../../server/tokens.ts';
import { beforeTakeDown, createBtrfs, fillVaried, snapshotReadonly, type BtrfsFixture } from '../fixtures/btrfs.ts';
import { assertTreesEqual } from '../fixtures/tree.ts';
import * as btrfs from '../../core/btrfs/index.ts';
import { startServer, type RunningServer, type ServeOptions } from '../../server/serve.ts';
import { silentLogger } from '../../server/log.ts';
import type { Reporter } from '../../client/progress/report.ts';
import { setTimeout as sleep } from 'node:timers/promises';
import { push } from '../../client/push/push.ts';
import { ServerApi } from '../../client/http/api.ts';
import type { Transfer } from '../../core/protocol.ts';

interface AfterHook {
  after(fn: () => Promise<void> | void): void;
}

export interface Pair {
  client: BtrfsFixture;
  server: BtrfsFixture;
  /** The writable source subvolume on the client. */
  source: string;
  /** Where the client's read-only snapshots go. */
  snaps: string;
  /** The server's --root. */
  root: string;
  /** Takes a read-only snapshot of the source named `name`; returns its path. */
  snapshot(name: string): Promise<string>;
  startServer(options?: Partial<Pick<ServeOptions, 'holdReceives' | 'expireAfterMs' | 'leaseMs' | 'port' | 'tls' | 'behindProxy' | 'publicUrl' | 'tokensFile' | 'receiveRetry' | 'verify' | 'retention' | 'pruneRetry' | 'log' | 'catalogWriter' | 'limits' | 'restore'>>): Promise<RunningServer>;
  receivedPath(volume: string, name: string): string;
}

export async function createPair(t: AfterHook, options: { clientMiB?: number; serverMiB?: number; fillMB?: number; seed?: string } = {}): Promise<Pair> {
  // Servers close before the filesystems' take-downs: one still running holds files open under its root.
  const closeFirst = beforeTakeDown(t);
  const client = await createBtrfs(t, { sizeMiB: options.clientMiB ?? 512 });
  const server = await createBtrfs(t, { sizeMiB: options.serverMiB ?? 512 });
  const source = path.join(client.mountPoint, 'data');
  const snaps = path.join(client.mountPoint, 'snaps');
  await btrfs.createSubvolume(source);
  await fs.mkdir(snaps);
  await fillVaried(source, { seed: options.seed ?? 'pair', sizeMB: options.fillMB ?? 8 });
  const root = path.join(server.mountPoint, 'root');
  return {
    client, server, source, snaps, root,
    async snapshot(name) {
      const p = path.join(snaps, name);
      await snapshotReadonly(source, p);
      return p;
    },
    async startServer(opts = {}) {
      const s = await startServer({ root, host: '127.0.0.1', port: 0, behindProxy: false, log: silentLogger(), leaseMs: 1000, ...opts });
      closeFirst(() => s.close().catch(() => undefined));
      return s;
    },
    receivedPath: (volume, name) => path.join(root, 'volumes', 'default', volume, name),
  };
}

/** A reporter that keeps what it was told, for assertions. */
export function recordingReporter(): Reporter & { notes: string[]; started: { snapshot: string; parent: string | null }[]; receivedSnapshots: string[] } {
  const notes: string[] = [];
  const started: { snapshot: string; parent: string | null }[] = [];
  const received: string[] = [];
  // SNAPFERRY_TEST_VERBOSE=FILE appends what the pushes in a test say to FILE.
  const echo = process.env.SNAPFERRY_TEST_VERBOSE ? (m: string) => appendFileSync(process.env.SNAPFERRY_TEST_VERBOSE!, `${new Date().toISOString()} ${m}\n`) : () => undefined;
  return {
    notes, started, receivedSnapshots: received,
    note: (m) => {
      notes.push(m);
      echo(m);
    },
    startTransfer: (snapshot, parent) => started.push({ snapshot, parent }),
    progress: () => undefined,
    waiting: () => undefined,
    received: (snapshot) => void received.push(snapshot),
  };
}

/**
 * The received snapshot equals its source: contents, modes, owners, links, xattrs and mtimes, except the top
 * directory's mtime, which btrfs itself does not carry over an incremental (see CompareOptions.ignoreRootMtime).
 */
export function assertReceived(source: string, received: string): Promise<void> {
  return assertTreesEqual(source, received, { ignoreRootMtime: true });
}

/**
 * The length of a snapshot's full framed stream, as a push with `compress: level` frames it (framing is deterministic:
 * named after its UUID, core/wire/stream-naming.ts), or with `asSent` as btrfs send names it (a server's restore stream).
 */
export async function framedLength(snapshot: string, chunkSize: number, level = 3, asSent = false): Promise<number> {
  const send = btrfs.send(snapshot);
  let bytes = 0;
  const count = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      bytes += chunk.length;
      callback();
    },
  });
  const named = asSent ? [] : [new FirstCommandRenamer(stableNaming())];
  await pipeline([send.stream, ...named, new FrameEncoder({ chunkSize, level }), count]);
  await send.done;
  return bytes;
}

/** A tokens file in its own temp dir with clients alice and bob and the admin ops, and their tokens. */
export async function aliceBobAdmin(t: AfterHook): Promise<{ file: string; alice: string; bob: string; admin: string }> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), `snapferry-tokens-${process.pid}-`));
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'tokens.json');
  const alice = (await addClient(file, 'alice')).token;
  const bob = (await addClient(file, 'bob')).token;
  const admin = (await addClient(file, 'ops', 'admin')).token;
  return { file, alice, bob, admin };
}

/** Polls `fn` every 100 ms until it gives a value, or fails naming `what` after `timeoutMs`. */
export async function until<T>(
  what: string,
  fn: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs = 60_000,
  everyMs = 100,
): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

/**
 * Makes the server's chain of upload `id` disagree with what btrfs send makes from frame `from` on, as a changed
 * kernel or a renamed snapshot would: waits until the server has stopped appending frames (bytes already on their way
 * still arrive after a push stops), flips a byte of every chain record from `from` (the chain is cumulative, so every
 * later record differs too), then waits out the stopped push's lease (`leaseMs`).
 */
export async function disagreeFrom(pair: Pick<Pair, 'root'>, server: { url: string }, id: string, from: number, leaseMs: number): Promise<void> {
  const api = new ServerApi({ server: server.url });
  let seen = -1;
  await until('the server to stop appending frames', async () => {
    const now = (await api.transfer(id)).framesVerified;
    const still = now === seen;
    seen = now;
    if (!still) await sleep(500);
    return still;
  });
  const indexFile = path.join(pair.root, 'spool', `${id}.frames`);
  const index = await fs.readFile(indexFile);
  for (let at = from * 64 + 40; at < index.length; at += 64) index[at] = index[at]! ^ 0xff;
  await fs.writeFile(indexFile, index);
  await sleep(leaseMs + 100);
}

/**
 * Starts a push of `snapshot` to volume v (64 KiB frames at 1 MiB/s) and stops it once the server holds `frames`
 * verified frames: an upload left unfinished, as a client that went away leaves it. Returns the transfer then.
 */
export async function pushPart(server: RunningServer, snapshot: string, frames: number): Promise<Transfer> {
  const controller = new AbortController();
  const run = push(
    { server: server.url, volume: 'v', snapshots: [snapshot], chunkSize: 64 * 1024, patchBytes: 256 * 1024, limitRate: 1024 * 1024, signal: controller.signal },
    recordingReporter(),
  );
  run.catch(() => undefined);
  const api = new ServerApi({ server: server.url });
  // Of this snapshot: a transfer of another one the server received before has verified frames too.
  const name = path.basename(snapshot);
  const partial = await until('verified frames', async () => (await api.transfers()).transfers.find((x) => x.snapshot === name && x.framesVerified >= frames));
  controller.abort();
  await run.catch(() => undefined);
  return partial;
}
