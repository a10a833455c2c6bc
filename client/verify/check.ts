/**
 * One verify: the server digests its copy of a snapshot while this machine digests its own, then the two digests
 * are compared top down (core/tree-digest), asking the server only for the digests of directories that differ and
 * the records of paths that differ. What crossed the line (request and answer bodies) is counted.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { SnapferryError, describeError } from '../../core/errors.ts';
import type { DigestedTree } from '../../core/tree-digest/index.ts';
import type { VerifyJob } from '../../core/protocol.ts';
import type { TreeDifference } from '../../core/tree-digest/types.ts';
import type { ServerApi } from '../http/api.ts';
import { digestSchedule, pollDelay } from '../http/poll-schedule.ts';
import type { BackoffOptions } from '../http/retry.ts';
import { VerifyProgress, type VerifyFigures } from './progress.ts';
import { RemoteTree } from './remote.ts';
import { compare, digestLocal } from './tree-engine.ts';

/** Differences listed at most; a tree that differs in more says so (`truncated`). */
export const MAX_DIFFERENCES = 1000;
/** How often the server's job is asked how far it is. */
const POLL_MS = 1000;
/** Well inside the server's idle release (10 minutes by default). */
const KEEPALIVE_MS = 60_000;

export interface VerifyEvents {
  note(message: string): void;
  progress(figures: VerifyFigures): void;
}

export interface CheckRequest {
  /** An API whose meter counts into `line` (see lineMeter). */
  api: ServerApi;
  line: LineCount;
  volume: string;
  /** The snapshot's name on the server. */
  snapshot: string;
  /** The local read-only snapshot. */
  path: string;
  readData: boolean;
  /** With an admin token: whose snapshot. */
  client?: string;
  backoff?: Partial<BackoffOptions>;
  signal?: AbortSignal;
  pollMs?: number;
  /** A saved digest of this snapshot or an older one to start from, and what it is (for the note). */
  reuse?: { tree: DigestedTree; from: string } | null;
  /** Given the local digest once it is made (to save it). */
  onLocalDigest?: (tree: DigestedTree) => Promise<void>;
}

export interface VerifyOutcome {
  volume: string;
  snapshot: string;
  path: string;
  equal: boolean;
  differences: TreeDifference[];
  truncated: boolean;
  /** Entries and content bytes of the local tree. */
  entries: number;
  bytes: string;
  /** Bodies that crossed the line, both ways, and the requests that carried them. */
  line: { sent: number; received: number; requests: number };
  /** Which saved digest the server started from. */
  serverReused: 'self' | 'parent' | null;
}

/** What crossed the line: ServerApi's `meter` adds to it. */
export interface LineCount {
  sent: number;
  received: number;
  requests: number;
}

export function lineMeter(): { count: LineCount; meter: (sent: number, received: number) => void } {
  const count: LineCount = { sent: 0, received: 0, requests: 0 };
  return {
    count,
    meter: (sent, received) => {
      count.sent += sent;
      count.received += received;
      count.requests++;
    },
  };
}

/** The server's copy differs from the local snapshot (differences were found and listed). */
export class VerifyDifferences extends SnapferryError {
  constructor(message: string, details: Record<string, unknown>) {
    super('verify_differences', message, { details });
  }
}

export async function checkSnapshot(req: CheckRequest, events: VerifyEvents): Promise<VerifyOutcome> {
  const before = { ...req.line };
  const stop = new AbortController();
  const signal = req.signal ? AbortSignal.any([req.signal, stop.signal]) : stop.signal;
  const remote = await RemoteTree.start(
    { api: req.api, ...(req.client !== undefined ? { client: req.client } : {}), ...(req.backoff ? { backoff: req.backoff } : {}), signal, note: events.note },
    { volume: req.volume, snapshot: req.snapshot, readData: req.readData },
  );
  const progress = new VerifyProgress(req.snapshot);
  try {
    if (req.reuse) events.note(`${req.snapshot}: this machine starts from its saved digest of ${req.reuse.from}`);
    const localDone = digestLocal(req.path, {
      reuse: req.reuse?.tree ?? null,
      signal,
      onProgress: (p) => {
        progress.local = { bytes: p.bytes, total: p.total, done: false };
      },
    }).then(async (tree) => {
      progress.local = { ...progress.local, done: true };
      // Not worth failing a verify for: without it, the next one reads everything again.
      await req.onLocalDigest?.(tree).catch((err: unknown) => events.note(`could not save this machine's digest of ${req.snapshot}: ${describeError(err)}`));
      return tree;
    });
    // A local digest that fails stops the polling at once, and its error is the one that shows.
    localDone.catch(() => stop.abort());
    const localFinished = new AbortController();
    void localDone.finally(() => localFinished.abort()).catch(() => undefined);
    const [local, server] = await Promise.all([localDone, waitForServer(remote, progress, events, signal, req.pollMs ?? POLL_MS, localFinished.signal)]);
    if (server.reused) events.note(`${req.snapshot}: the server started from the saved digest of ${server.reused === 'self' ? 'this snapshot' : 'its parent'}`);
    events.progress(progress.figures());
    const comparison = await compare(local, remote, MAX_DIFFERENCES);
    const summary = await local.summary();
    return {
      volume: req.volume, snapshot: req.snapshot, path: req.path, equal: comparison.equal,
      differences: comparison.differences, truncated: comparison.truncated,
      entries: summary.entries, bytes: summary.bytes,
      line: { sent: req.line.sent - before.sent, received: req.line.received - before.received, requests: req.line.requests - before.requests },
      serverReused: server.reused,
    };
  } finally {
    stop.abort();
    await remote.release();
  }
}

/**
 * Polls the server's job until its digest is ready (a failed one throws): each second at first, then every five, so
 * a long digest costs a few hundred bytes a poll and not more polls than it needs. Once it is ready and the local
 * digest still runs, a poll a minute keeps the job from being released as idle.
 */
async function waitForServer(remote: RemoteTree, progress: VerifyProgress, events: VerifyEvents, signal: AbortSignal, pollMs: number, localFinished: AbortSignal): Promise<VerifyJob> {
  let ready: VerifyJob | null = null;
  const started = Date.now();
  for (;;) {
    const now = await remote.ready();
    progress.server = { bytes: now.progress.bytes, total: now.progress.total, done: now.state === 'ready' };
    events.progress(progress.figures());
    if (now.state === 'ready') ready = now;
    if (ready && localFinished.aborted) return ready;
    const wait = ready ? KEEPALIVE_MS : pollDelay(Date.now() - started, digestSchedule(pollMs));
    await sleep(wait, undefined, { signal: ready ? AbortSignal.any([signal, localFinished]) : signal }).catch((err: unknown) => {
      if (signal.aborted) throw err;
    });
  }
}
