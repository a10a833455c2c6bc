/**
 * Who is asking: every request's `Authorization: Bearer TOKEN` is matched against the tokens file
 * (server/tokens.ts) and becomes a Caller, a client with its own namespace or a read-only admin. Without a tokens
 * file (the library's default, and `serve --no-auth`) every caller is the one client `default`.
 */
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import net from 'node:net';
import { SnapferryError, ValidationError } from '../core/errors.ts';
import { parseName, type SafeName } from '../core/names.ts';
import { readTokens, type TokenEntry } from './tokens.ts';
import type { Logger } from './log.ts';

/** Until tokens existed every caller was this client; without a tokens file it still is. */
export const DEFAULT_CLIENT = 'default' as SafeName;

export type Caller = { role: 'client'; client: SafeName } | { role: 'admin'; name: SafeName };

export interface Gate {
  /** Identifies the request's caller (or throws `unauthorized`) and remembers it for clientOf(). */
  admit(req: Request): Promise<Caller>;
  /** The client that owns what this admitted request creates (tus creation hook). */
  clientOf(req: Request): SafeName;
  /** `listener` is told of each client whose token leaves the tokens file, looked at every TOKENS_LOOK_MS from now. */
  onRevoked(listener: RevokedListener): void;
  /**
   * Of `clients`, those the tokens file does not hold as clients now: removed before the server read the file (at
   * start, the file as it was found). None without a tokens file: every caller is `default`, and nobody is removed.
   */
  absent(clients: readonly SafeName[]): SafeName[];
  /** Stops looking at the tokens file. */
  close(): void;
}

/** Told of a client whose token was removed from the tokens file, or replaced (removed, then added again). */
export type RevokedListener = (client: SafeName) => void;

/**
 * How often the server looks whether the tokens file changed (a stat), besides at every request: a removed client
 * sends no request that would show it, and its uploads must end without one.
 */
export const TOKENS_LOOK_MS = 2000;

const HOW_TO =
  'ask the server admin for a token (`snapferry client add NAME --tokens FILE` prints one) and send it as ' +
  '`Authorization: Bearer TOKEN`; snapferry push and status read it from --token-file FILE or SNAPFERRY_TOKEN';

export class Unauthorized extends SnapferryError {
  constructor(message: string) {
    super('unauthorized', message);
  }
}

/** An admin token asked to change something. */
export class Forbidden extends SnapferryError {
  constructor(message: string) {
    super('forbidden', message);
  }
}

/** No tokens file: one client, no questions (today's behaviour for the library and for `serve --no-auth`). */
export function openGate(): Gate {
  const caller: Caller = { role: 'client', client: DEFAULT_CLIENT };
  return { admit: () => Promise.resolve(caller), clientOf: () => DEFAULT_CLIENT, onRevoked: () => undefined, absent: () => [], close: () => undefined };
}

/** A gate backed by a tokens file; opening it fails at start when the file is missing or invalid. */
export async function tokenGate(file: string, log: Logger, lookEveryMs = TOKENS_LOOK_MS): Promise<Gate> {
  const registry = new TokenRegistry(file, log);
  await registry.load();
  let stopLooking = (): void => undefined;
  const callers = new WeakMap<Request, Caller>();
  return {
    onRevoked(listener) {
      registry.onRevoked(listener);
      // Looked at on a timer only once someone listens: a server that failed to start leaves no timer behind.
      stopLooking();
      stopLooking = registry.lookEvery(lookEveryMs);
    },
    close: () => stopLooking(),
    absent: (clients) => registry.absent(clients),
    async admit(req) {
      const caller = await registry.identify(req.headers.get('authorization'));
      callers.set(req, caller);
      return caller;
    },
    clientOf(req) {
      const caller = callers.get(req);
      // The app admits every request before tus sees it and stops admins from creating; this is the last check.
      if (caller?.role !== 'client') throw new Unauthorized(`only a client token can create uploads: ${HOW_TO}`);
      return caller.client;
    },
  };
}

interface Loaded {
  /** What the file was when read: a change to any of these means it was replaced or edited. */
  stamp: string;
  entries: { entry: TokenEntry; hash: Buffer }[];
}

/** The tokens file, read again whenever it changes, so adding or removing a client needs no restart. */
export class TokenRegistry {
  private loaded: Loaded | null = null;
  private reloading: Promise<Loaded> | null = null;
  private started = false;
  /**
   * Each client's token hash as the file last read whole had it. Kept apart from `loaded`, which an unreadable file
   * clears: a client removed by an edit that first broke the file is still found removed once it is fixed.
   */
  private clients: ReadonlyMap<string, string> | null = null;
  private revoked: RevokedListener | null = null;

  constructor(
    readonly file: string,
    private readonly log: Logger,
  ) {}

  async load(): Promise<Loaded> {
    const stamp = await stampOf(this.file);
    if (this.loaded?.stamp === stamp) return this.loaded;
    // Requests arriving together share one read.
    this.reloading ??= readTokens(this.file)
      .then((entries) => {
        const first = !this.started;
        this.started = true;
        this.loaded = { stamp, entries: entries.map((entry) => ({ entry, hash: Buffer.from(entry.sha256, 'hex') })) };
        this.log.info({ file: this.file, tokens: entries.length }, first ? 'tokens loaded' : 'tokens file changed; reloaded');
        this.noteRevoked(entries);
        return this.loaded;
      })
      .catch((err: unknown) => {
        // At start, the file's own error says best what to fix.
        if (this.loaded === null && !this.started) throw err;
        // Fail closed: a token removed by a broken edit must not keep working. Retryable, so pushes wait it out.
        this.loaded = null;
        this.log.error({ err, file: this.file }, 'tokens file unreadable; refusing every request until it is fixed');
        throw new SnapferryError('tokens_unavailable', 'the server cannot read its tokens file; its admin has been told (server log); try again later', {
          retryable: true,
          cause: err,
        });
      })
      .finally(() => {
        this.reloading = null;
      });
    return this.reloading;
  }

  /** `listener` is told of every client whose token the file no longer holds, once per change read. */
  onRevoked(listener: RevokedListener): void {
    this.revoked = listener;
  }

  /**
   * Looks at the file every `ms` besides at each request; returns what stops it. A file that stays unreadable is read
   * again only once it changes, so its error is logged once, not at every look.
   */
  lookEvery(ms: number): () => void {
    let seen: string | null = null;
    const timer = setInterval(() => {
      void stampOf(this.file).then((stamp) => {
        if (stamp === seen) return;
        seen = stamp;
        return this.load().then(() => undefined);
      }).catch(() => undefined);
    }, ms);
    timer.unref();
    return () => clearInterval(timer);
  }

  /**
   * A client whose name is gone, or whose token changed: the token that began its uploads no longer works, and a
   * replaced one (`client remove`, then `client add` again) ends them as well, whether or not the server read the
   * file between the two commands. Admins own no uploads.
   */
  private noteRevoked(entries: readonly TokenEntry[]): void {
    const before = this.clients;
    this.clients = new Map(entries.filter((e) => e.role === 'client').map((e) => [e.name, e.sha256]));
    if (before === null) return;
    for (const [name, sha256] of before) if (this.clients.get(name) !== sha256) this.revoked?.(name as SafeName);
  }

  /** Of `clients`, those the file last read whole does not hold as clients (all of them before it was read). */
  absent(clients: readonly SafeName[]): SafeName[] {
    return clients.filter((name) => !this.clients?.has(name));
  }

  async identify(authorization: string | null): Promise<Caller> {
    const { entries } = await this.load();
    const m = /^bearer[ \t]+(\S+)[ \t]*$/i.exec(authorization ?? '');
    if (!m) {
      const told = authorization === null ? 'this server needs a token' : 'the Authorization header is not `Bearer TOKEN`';
      throw new Unauthorized(`${told}: ${HOW_TO}`);
    }
    const digest = crypto.createHash('sha256').update(m[1]!, 'utf8').digest();
    // Every entry is compared, in constant time, with no early exit: how long this takes says nothing about
    // which hash came close.
    let found: TokenEntry | null = null;
    for (const { entry, hash } of entries) {
      if (crypto.timingSafeEqual(hash, digest) && found === null) found = entry;
    }
    if (!found) throw new Unauthorized(`this token is not known to the server (mistyped, removed, or meant for another server): ${HOW_TO}`);
    return found.role === 'admin' ? { role: 'admin', name: found.name } : { role: 'client', client: found.name };
  }
}

/** What the file is now: a change to any of these means it was replaced or edited. */
async function stampOf(file: string): Promise<string> {
  const stat = await fs.stat(file).catch(() => null);
  return stat ? `${stat.ino}:${stat.size}:${stat.mtimeMs}:${stat.ctimeMs}` : 'missing';
}

/**
 * Reads (GET, HEAD) of the JSON API are all an admin token may do, and verify's requests: they change nothing the
 * server holds (they digest a snapshot and answer digests; their batches need a body, so they are POSTs), and an
 * admin's restore of a client's snapshot ends with one. Its DELETE releases only a verify the admin started: that is
 * decided where the hold is resolved (server/verify/jobs.ts `release`).
 */
export function assertAllowed(caller: Caller, method: string, isUpload: boolean, isVerify = false): void {
  // A HEAD on an upload is how a push claims it to resume (it takes the upload's lease): not a read here.
  if (isUpload || (!isVerify && method !== 'GET' && method !== 'HEAD')) writerOf(caller);
}

/**
 * The client a request's `?client=NAME` names, as this caller may name it: an admin token any client (undefined when
 * it names none), a client token only itself, named or not. A client token that names another client is refused
 * rather than answered with its own: two clients' snapshots often share names (home.20261204T0100Z from the same
 * timer), and a restore or verify meant for the other client that quietly read the caller's own would be the wrong
 * data, and a list the wrong list.
 */
export function clientNamed(caller: Caller, query: string | undefined): SafeName | undefined {
  const named = query === undefined || query === '' ? undefined : parseName(query, 'client');
  if (caller.role === 'admin') return named;
  if (named !== undefined && named !== caller.client) {
    throw new Forbidden(`this is ${caller.client}'s token, which reads only ${caller.client}'s volumes, not ${named}'s: naming a client (?client=, --client) takes an admin token`);
  }
  return caller.client;
}

/** The client a change is made for; an admin token changes nothing. */
export function writerOf(caller: Caller): SafeName {
  if (caller.role === 'client') return caller.client;
  throw new Forbidden(`${caller.name} has an admin token, which reads every client's volumes and transfers but changes nothing; use the client's own token`);
}

/**
 * `serve --no-auth` lets anyone who can connect push and abort. Allowed only where "anyone who can connect" is this
 * machine: a loopback address, and not behind a reverse proxy (which would hand it requests from anywhere).
 */
export function assertOpenAccessAllowed(host: string, behindProxy: boolean): void {
  if (behindProxy) {
    throw new ValidationError('--no-auth cannot be used with --behind-proxy: the proxy would let anyone reach an open server; use --tokens FILE');
  }
  if (!isLoopback(host)) {
    throw new ValidationError(`--no-auth is only allowed on a loopback address (127.0.0.1, ::1), not ${host}: anyone who reaches it could push and abort; use --tokens FILE`, {
      details: { host },
    });
  }
}

export function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  const plain = host.replace(/^\[|\]$/g, '').replace(/^::ffff:/i, '');
  if (net.isIPv4(plain)) return plain.startsWith('127.');
  return net.isIPv6(plain) && /^(0{0,4}:){7}0{0,3}1$|^::1$/.test(plain);
}
