/**
 * The server's copy of a snapshot as a TreeDigestSource (core/tree-digest/types.ts), over HTTP: one verify job on
 * the server (server/verify/jobs.ts), asked for digests in batches within VERIFY_LIMITS. A request that fails in a
 * way that can heal (the line, a 5xx, a 429) is tried again with backoff, honouring Retry-After, as a push does.
 */
import { z } from 'zod';
import { SnapferryError } from '../../core/errors.ts';
import {
  ChildrenAnswer, RecordsAnswer, VERIFY_LIMITS, VERIFY_QUERY, VerifyJob, routes,
  type ChildrenRequest, type VerifyStart,
} from '../../core/protocol.ts';
import type { ChildDigest, EntryRecord, TreeDigestSource, TreePath, TreeSummary } from '../../core/tree-digest/types.ts';
import type { ServerApi } from '../http/api.ts';
import { retrying, type BackoffOptions, type RetryingOptions } from '../http/retry.ts';

export interface RemoteOptions {
  api: ServerApi;
  /** For an admin token: whose snapshot. */
  client?: string;
  backoff?: Partial<BackoffOptions>;
  signal?: AbortSignal;
  /** Told of each retry, for the user. */
  note?: (message: string) => void;
}

/** Paths' characters in one request, kept well under the server's body limit (JSON adds quotes and escapes). */
const BATCH_CHARS = VERIFY_LIMITS.maxBodyBytes / 4;

export class RemoteTree implements TreeDigestSource {
  /** Round trips to the server's job, retries included. */
  requests = 0;
  #summary: TreeSummary | null = null;

  private constructor(
    private readonly options: RemoteOptions,
    readonly job: VerifyJob,
  ) {}

  /** Starts (or joins) the server's digest of its copy of `volume/snapshot`. */
  static async start(options: RemoteOptions, start: VerifyStart): Promise<RemoteTree> {
    const query = options.client === undefined ? '' : `?${VERIFY_QUERY.client}=${encodeURIComponent(options.client)}`;
    const job = await retrying(() => options.api.request('POST', `${routes.verify}${query}`, VerifyJob, start), retriesOf(options));
    return new RemoteTree(options, job);
  }

  /** The job's state now. */
  state(): Promise<VerifyJob> {
    return this.call(() => this.options.api.request('GET', routes.verifyJob(this.job.id), VerifyJob));
  }

  /** The server is done with its digest; a failed one is an error that says why. */
  async ready(): Promise<VerifyJob> {
    const now = await this.state();
    if (now.state === 'failed' && now.error) throw new SnapferryError(now.error.code, `the server could not digest its copy of ${this.job.snapshot}: ${now.error.message}`, { retryable: now.error.retryable });
    if (now.state === 'ready' && now.summary) this.#summary = now.summary;
    return now;
  }

  async summary(): Promise<TreeSummary> {
    if (this.#summary) return this.#summary;
    const now = await this.ready();
    if (!now.summary) throw new SnapferryError('verify_not_ready', `the server is still digesting ${this.job.snapshot}`, { retryable: true });
    return now.summary;
  }

  async children(dirs: readonly TreePath[]): Promise<Map<TreePath, ChildDigest[]>> {
    const out = new Map<TreePath, ChildDigest[]>();
    for (const batch of batches(dirs)) {
      let asking: ChildrenRequest['dirs'] = batch.map((path) => ({ path }));
      while (asking.length > 0) {
        const request = asking;
        const answer = await this.call(() => this.options.api.request('POST', routes.verifyChildren(this.job.id), ChildrenAnswer, { dirs: request }));
        const settled = new Set(answer.notDirectories);
        const again: ChildrenRequest['dirs'] = [];
        for (const { path, entries, complete } of answer.children) {
          const list = out.get(path) ?? [];
          out.set(path, list);
          for (const e of entries) list.push(e);
          const last = list.at(-1);
          const asked = request.find((d) => d.path === path)?.after;
          if (complete) settled.add(path);
          else if (last && last.name !== asked) again.push({ path, after: last.name });
          else throw new SnapferryError('bad_response', `the server's list of ${JSON.stringify(path)} did not go on after ${JSON.stringify(asked ?? '')}`);
        }
        const reached = new Set(answer.children.map((c) => c.path));
        // What the answer did not reach (it was full) is asked again; a server that answers nothing is not a loop.
        const rest = request.filter((d) => !settled.has(d.path) && !reached.has(d.path));
        if (answer.children.length === 0 && answer.notDirectories.length === 0 && rest.length > 0) {
          throw new SnapferryError('bad_response', 'the server answered no directory of those asked for');
        }
        asking = [...again, ...rest];
      }
    }
    return out;
  }

  async records(paths: readonly TreePath[]): Promise<Map<TreePath, EntryRecord>> {
    const out = new Map<TreePath, EntryRecord>();
    for (const batch of batches(paths)) {
      const answer = await this.call(() => this.options.api.request('POST', routes.verifyRecords(this.job.id), RecordsAnswer, { paths: batch }));
      for (const { path, record } of answer.records) out.set(path, record);
    }
    return out;
  }

  /** This start's hold is released, no other's (best effort: an idle job goes by itself). */
  async release(): Promise<void> {
    await this.options.api.request('DELETE', routes.verifyJob(this.job.id), z.unknown()).catch(() => undefined);
  }

  private call<T>(fn: () => Promise<T>): Promise<T> {
    return retrying(() => {
      this.requests++;
      return fn();
    }, retriesOf(this.options));
  }
}

/** A request that fails in a way that can heal is tried 8 times. */
function retriesOf({ backoff, signal, note }: RemoteOptions): RetryingOptions {
  return { backoff: { retries: 8, ...backoff }, ...(signal ? { signal } : {}), ...(note ? { note } : {}) };
}

/** Paths in batches of at most maxPathsPerRequest and about BATCH_CHARS characters. */
export function batches(paths: readonly string[]): string[][] {
  const out: string[][] = [];
  let current: string[] = [];
  let chars = 0;
  for (const p of paths) {
    if (current.length > 0 && (current.length >= VERIFY_LIMITS.maxPathsPerRequest || chars + p.length > BATCH_CHARS)) {
      out.push(current);
      current = [];
      chars = 0;
    }
    current.push(p);
    chars += p.length;
  }
  if (current.length > 0) out.push(current);
  return out;
}
