/**
 * Verify, the server's half (issue 18): a job digests the server's copy of one received snapshot, and then answers
 * the client's questions about that digest (summary, children, records) until the client releases it or goes quiet.
 * It knows nothing of HTTP; server/app.ts is thin over it.
 *
 * - One job per snapshot at a time: a second start of the same snapshot joins the job that is there. Each start gets a
 *   hold of its own (its id is the one the caller names): a job is shared by a timer's `run`, a `verify` by hand and an
 *   admin's `--client`, and a release that counted down a shared id let one caller's second DELETE, or an admin's,
 *   take the job from under the others. A hold is released once, by the caller that started it.
 * - At most `maxPerClient` jobs per client and `maxTotal` in all: each holds a tree's digest in memory and hashes on
 *   the server's disks and cores; past either, a start is refused (429, with when to come back).
 * - A job that nobody asked about for `idleMs` is released (a digest that was under way is stopped).
 * - Each snapshot's digest is saved beside the catalog (server/verify/saved-digests.ts) and the next job starts from
 *   it, or from the parent snapshot's: a file whose inode, size, ctime and mtime did not change is not read again, so
 *   an incremental costs about its changes. A change by hand to a received snapshot changes ctimes, so it is read
 *   again. `readData` starts from nothing and reads every byte (bit rot that a scrub has not reported).
 */
import crypto from 'node:crypto';
import { SnapferryError, describeError } from '../../core/errors.ts';
import type { SafeName } from '../../core/names.ts';
import { VERIFY_LIMITS, type ChildrenAnswer, type ChildrenRequest, type RecordsAnswer, type VerifyJob } from '../../core/protocol.ts';
import type { TreeDigestSource, TreeSummary } from '../../core/tree-digest/types.ts';
import { NotFound, type ReplicationService } from '../replication.ts';
import type { Logger } from '../log.ts';
import type { DigestEngine, DigestProgress } from './engine.ts';
import type { SavedDigests } from './saved-digests.ts';
import { ClientCaps } from '../client-caps.ts';
import { Forbidden, type Caller } from '../auth.ts';

export interface VerifyLimits {
  /** Jobs one client may hold at once. */
  maxPerClient: number;
  /** Jobs the server holds at once. */
  maxTotal: number;
  /** A job nobody asked about for this long is released. */
  idleMs: number;
}

export const DEFAULT_VERIFY_LIMITS: Readonly<VerifyLimits> = Object.freeze({ maxPerClient: 2, maxTotal: 4, idleMs: 10 * 60_000 });

/** When a refused start should come back: a digest of a small change takes seconds, a first one minutes. */
const RETRY_AFTER_SECONDS = 15;
/** A finished job asked about less recently than this gives its place to a new verify (makeRoom). */
const FINISHED_IDLE_MS = 30_000;

type JobState =
  | { state: 'digesting' }
  | { state: 'ready'; tree: TreeDigestSource; summary: TreeSummary }
  | { state: 'failed'; error: { code: string; message: string; retryable: boolean } };

interface Job {
  client: SafeName;
  volume: SafeName;
  snapshot: SafeName;
  readData: boolean;
  reused: 'self' | 'parent' | null;
  progress: DigestProgress;
  now: JobState;
  stop: AbortController;
  lastUsed: number;
  /** Its starts not yet released (ids of `holds`): the job goes when the last is. */
  holds: Set<string>;
  /** Gives the job's place under the caps back (once). */
  release: () => void;
}

/** One start's share of a job, released by the caller that started it and by no other. */
interface Hold {
  id: string;
  job: Job;
  by: Caller;
}

export interface StartRequest {
  /** Who starts it: the only caller that may release the hold it gets. */
  by: Caller;
  client: SafeName;
  volume: SafeName;
  snapshot: SafeName;
  readData: boolean;
}

export class VerifyJobs<T extends TreeDigestSource = TreeDigestSource> {
  private readonly jobs = new Set<Job>();
  /** The job a start of a snapshot joins, by client, volume and snapshot. */
  private readonly current = new Map<string, Job>();
  private readonly holds = new Map<string, Hold>();
  private readonly limits: Readonly<VerifyLimits>;
  private readonly caps: ClientCaps;
  private readonly sweep: NodeJS.Timeout;
  readonly saved: SavedDigests;

  constructor(
    private readonly service: Pick<ReplicationService, 'snapshots' | 'snapshotPath' | 'savedDigests'>,
    private readonly engine: DigestEngine<T>,
    private readonly log: Logger,
    limits: Partial<VerifyLimits> = {},
    private readonly now: () => number = Date.now,
  ) {
    this.limits = { ...DEFAULT_VERIFY_LIMITS, ...limits };
    this.caps = new ClientCaps({ maxPerClient: this.limits.maxPerClient, maxTotal: this.limits.maxTotal }, { code: 'too_many_verifies', held: 'verifies on the server', serverHolds: (n) => `runs ${n} verifies` });
    this.saved = service.savedDigests();
    this.sweep = setInterval(() => this.releaseIdle(), Math.max(50, Math.min(60_000, this.limits.idleMs / 4)));
    this.sweep.unref();
  }

  /** Starts the digest of the server's copy of a snapshot, or joins the job already on it: either way, a new hold. */
  async start(req: StartRequest): Promise<VerifyJob> {
    const { snapshots } = await this.service.snapshots(req.client, req.volume);
    const snapshot = snapshots.find((s) => s.name === req.snapshot);
    // Another client's snapshot is not in this client's list: it is reported exactly like a missing one.
    if (!snapshot) throw new NotFound(`snapshot ${req.volume}/${req.snapshot}`);
    const key = keyOf(req);
    const running = this.current.get(key);
    if (running && running.now.state !== 'failed' && (running.readData || !req.readData)) {
      running.lastUsed = this.now();
      return view(this.hold(running, req.by));
    }
    if (running?.now.state === 'digesting') {
      throw new SnapferryError('verify_busy', `${req.volume}/${req.snapshot} is being digested without --read-data; try again once it is done`, {
        retryable: true, details: { retryAfterSeconds: RETRY_AFTER_SECONDS },
      });
    }
    this.makeRoom((j) => j.client === req.client, this.limits.maxPerClient);
    this.makeRoom(() => true, this.limits.maxTotal);
    const release = this.caps.take(req.client);

    const dir = this.service.snapshotPath(req.client, req.volume, req.snapshot);
    const own = this.saved.file(req.client, req.volume, snapshot.uuid);
    const job: Job = {
      client: req.client, volume: req.volume, snapshot: req.snapshot, readData: req.readData,
      reused: null, progress: { bytes: 0, total: null, entries: 0 }, now: { state: 'digesting' }, stop: new AbortController(), lastUsed: this.now(), holds: new Set(), release,
    };
    this.jobs.add(job);
    // A failed job, or a plain one this --read-data start outdoes, stays for the holds it has (dropped, it answered
    // their next question 404) until they release it; it is no longer the one a start joins.
    this.current.set(key, job);
    void this.run(job, dir, own, snapshot.parentUuid);
    return view(this.hold(job, req.by));
  }

  private hold(job: Job, by: Caller): Hold {
    const hold: Hold = { id: crypto.randomBytes(16).toString('hex'), job, by };
    job.holds.add(hold.id);
    this.holds.set(hold.id, hold);
    return hold;
  }

  private async run(job: Job, dir: string, own: string, parentUuid: string | null): Promise<void> {
    try {
      const previous = job.readData ? null : await this.previous(job, own, parentUuid);
      const tree = await this.engine.digest(dir, {
        previous, signal: job.stop.signal,
        onProgress: (p) => {
          job.progress = { ...p, total: p.total ?? job.progress.total };
        },
      });
      const summary = await tree.summary();
      await this.engine.save(tree, own).catch((err: unknown) => this.log.warn({ file: own, err: describeError(err) }, 'could not save a digest; the next verify computes it again'));
      job.progress = { bytes: Number(summary.bytes), total: Number(summary.bytes), entries: summary.entries };
      job.now = { state: 'ready', tree, summary };
    } catch (err) {
      const e = err instanceof SnapferryError ? err : new SnapferryError('digest_failed', `could not digest ${job.volume}/${job.snapshot}: ${describeError(err)}`, { cause: err });
      if (!job.stop.signal.aborted) this.log.error({ client: job.client, volume: job.volume, snapshot: job.snapshot, err: e.message }, 'digest failed');
      job.now = { state: 'failed', error: { code: e.code, message: e.message, retryable: e.retryable } };
    }
  }

  /** The saved digest to start from: this snapshot's own, else its parent's; its size is the progress's total. */
  private async previous(job: Job, own: string, parentUuid: string | null): Promise<T | null> {
    const candidates: ['self' | 'parent', string][] = [['self', own]];
    if (parentUuid !== null) candidates.push(['parent', this.saved.file(job.client, job.volume, parentUuid)]);
    for (const [reused, file] of candidates) {
      const tree = await this.engine.load(file);
      if (tree === null) continue;
      job.reused = reused;
      job.progress = { ...job.progress, total: Number((await tree.summary()).bytes) };
      return tree;
    }
    return null;
  }

  /**
   * Where `among` holds `limit` jobs or more, the finished ones (ready or failed) nobody asked about for FINISHED_IDLE_MS
   * go, least recently asked first. The limits are there for the disks and cores a digest takes, and a finished job
   * takes none: an interrupted `verify` (Ctrl-C) left its job ready, and two of them refused the client's next verify
   * for the 10 minutes of idleMs. Its digest is saved, so a client that comes back for it soon gets it again cheaply.
   */
  private makeRoom(among: (job: Job) => boolean, limit: number): void {
    const cutoff = this.now() - FINISHED_IDLE_MS;
    const jobs = [...this.jobs].filter(among);
    const idle = jobs.filter((j) => j.now.state !== 'digesting' && j.lastUsed <= cutoff).sort((a, b) => a.lastUsed - b.lastUsed);
    for (let over = jobs.length - limit + 1; over > 0 && idle.length > 0; over--) this.drop(idle.shift()!);
  }

  /**
   * A hold as `caller` may see it: a client the holds on its own snapshots, an admin every client's. Another
   * client's, like one released or never given, is not found.
   */
  private visible(caller: Caller, id: string): Hold {
    const hold = this.holds.get(id);
    if (!hold || (caller.role === 'client' && hold.job.client !== caller.client)) throw new NotFound(`verify ${id}`);
    hold.job.lastUsed = this.now();
    return hold;
  }

  get(caller: Caller, id: string): VerifyJob {
    const hold = this.visible(caller, id);
    return caller.role === 'admin' ? { ...view(hold), client: hold.job.client } : view(hold);
  }

  async children(caller: Caller, id: string, req: ChildrenRequest): Promise<ChildrenAnswer> {
    const tree = this.ready(this.visible(caller, id).job);
    const found = await tree.children(req.dirs.map((d) => d.path));
    const answer: ChildrenAnswer = { children: [], notDirectories: [] };
    let room: number = VERIFY_LIMITS.maxEntriesPerAnswer;
    for (const { path, after } of req.dirs) {
      const all = found.get(path);
      if (all === undefined) {
        answer.notDirectories.push(path);
        continue;
      }
      if (room <= 0) break;
      const from = after === undefined ? 0 : all.findIndex((e) => e.name === after) + 1;
      if (from === 0 && after !== undefined) throw new SnapferryError('invalid_input', `${JSON.stringify(path)} has no entry ${JSON.stringify(after)} to go on after`);
      const entries = all.slice(from, from + room);
      room -= entries.length;
      answer.children.push({ path, entries, complete: from + entries.length >= all.length });
    }
    return answer;
  }

  async records(caller: Caller, id: string, paths: readonly string[]): Promise<RecordsAnswer> {
    const tree = this.ready(this.visible(caller, id).job);
    const found = await tree.records(paths);
    return { records: [...found].map(([path, record]) => ({ path, record })) };
  }

  /**
   * The caller that started a hold is done with it: once every hold of the job is released, the job goes (a digest
   * under way is stopped; a finished one stays saved on disk). A hold released already is not found, so a second
   * DELETE takes nothing from the other holds. An admin token writes nothing of a client's (README): it releases
   * only the holds it started itself. A hold never released goes with its job when nobody asks for idleMs.
   */
  release(caller: Caller, id: string): void {
    const hold = this.visible(caller, id);
    if (!sameCaller(hold.by, caller)) throw notYours(caller, hold);
    this.holds.delete(hold.id);
    hold.job.holds.delete(hold.id);
    if (hold.job.holds.size === 0) this.drop(hold.job);
  }

  /** Stops every job (the server is closing). */
  close(): void {
    clearInterval(this.sweep);
    for (const job of [...this.jobs]) this.drop(job);
  }

  /** Jobs nobody asked about for idleMs. */
  releaseIdle(): void {
    const cutoff = this.now() - this.limits.idleMs;
    for (const job of [...this.jobs]) {
      if (job.lastUsed > cutoff) continue;
      this.log.info({ client: job.client, volume: job.volume, snapshot: job.snapshot, state: job.now.state }, 'released a verify nobody asked about');
      this.drop(job);
    }
  }

  private drop(job: Job): void {
    job.stop.abort();
    job.release();
    for (const id of job.holds) this.holds.delete(id);
    this.jobs.delete(job);
    if (this.current.get(keyOf(job)) === job) this.current.delete(keyOf(job));
  }

  private ready(job: Job): TreeDigestSource {
    if (job.now.state === 'ready') return job.now.tree;
    if (job.now.state === 'failed') throw new SnapferryError(job.now.error.code, job.now.error.message, { retryable: job.now.error.retryable });
    throw new SnapferryError('verify_not_ready', `the server is still digesting ${job.volume}/${job.snapshot}: ask for its state (GET) until it is ready`, {
      retryable: true, details: { retryAfterSeconds: 1 },
    });
  }
}

function keyOf(job: Pick<Job, 'client' | 'volume' | 'snapshot'>): string {
  return `${job.client}/${job.volume}/${job.snapshot}`;
}

function sameCaller(a: Caller, b: Caller): boolean {
  return a.role === 'client' ? b.role === 'client' && a.client === b.client : b.role === 'admin' && a.name === b.name;
}

function notYours(caller: Caller, hold: Hold): Forbidden {
  const owner = hold.by.role === 'admin' ? `the admin ${hold.by.name}` : hold.by.client;
  if (caller.role === 'admin') {
    return new Forbidden(`${caller.name} has an admin token, which reads every client's verifies but releases only those it started itself (--client); verify ${hold.id} is ${owner}'s, released by its own verify or once nobody asks about it`);
  }
  return new Forbidden(`verify ${hold.id} was started by ${owner}, who releases it (or it goes once nobody asks about it); release the id your own start answered`);
}

function view(hold: Hold): VerifyJob {
  const { job } = hold;
  const now = job.now;
  return {
    id: hold.id, volume: job.volume, snapshot: job.snapshot, readData: job.readData, state: now.state,
    progress: job.progress, reused: job.reused,
    summary: now.state === 'ready' ? now.summary : null,
    error: now.state === 'failed' ? now.error : null,
  };
}
