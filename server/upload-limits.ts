/**
 * What one client may hold on the server while uploading: the bytes of its uploads in the spool (what they really
 * hold on disk, server/spool/usage.ts; a failed transfer's kept spool included), the number of uploads that hold a
 * spool or are open, and how fast it may create new ones. Defaults are generous: they stop a runaway or hostile
 * client from filling the disk, the spool directory or the catalog, not a first seed of a large volume or a push.
 */
import { SnapferryError, ValidationError, type SnapferryErrorOptions } from '../core/errors.ts';

export interface UploadLimits {
  /** Most bytes one client's uploads may hold in the spool together (every file of each, as on disk). */
  quotaBytes: number;
  /** Most uploads one client may have open (created, not yet complete) or holding a spool (a failed one's) at once. */
  maxOpenUploads: number;
  /** New uploads one client may create per minute, once its burst is spent (a token bucket, server/creation-rate.ts). */
  creationsPerMinute: number;
  /** New uploads one client may create at once before creationsPerMinute applies. */
  creationBurst: number;
}

export const DEFAULT_UPLOAD_LIMITS: Readonly<UploadLimits> = Object.freeze({
  quotaBytes: 16 * 1024 ** 4,
  maxOpenUploads: 32,
  // A push creates one upload per snapshot, and each takes a send, an upload and a receive (well over a second):
  // a catch-up of hundreds of small snapshots stays under this. Create-and-abort in a loop (1,500 in 33 s) does not.
  creationsPerMinute: 60,
  creationBurst: 120,
});

export function uploadLimits(given: Partial<UploadLimits> = {}): Readonly<UploadLimits> {
  const limits = { ...DEFAULT_UPLOAD_LIMITS, ...given };
  for (const [key, value] of Object.entries(limits)) {
    if (!Number.isSafeInteger(value) || value < 1) {
      throw new ValidationError(`${key} must be a whole number of at least 1, not ${String(value)}`, { details: { key } });
    }
  }
  return Object.freeze(limits);
}

/** What a quota refusal is judged on. */
export interface QuotaShortfall {
  client: string;
  /** What the upload itself would hold (all its files). */
  size: number;
  quota: number;
  /** What the client's other uploads hold. */
  heldByOthers: number;
  /**
   * Of heldByOthers, what nothing will free by itself: uploads no push is sending now (kept after a refusal or a cut),
   * and failed transfers' kept spools; they go only when aborted, or expire. Default 0: every other upload may end.
   */
  heldByIdle?: number;
  /** `size` is a declared length, not what has arrived so far. */
  sizeIsExact: boolean;
  /**
   * The transfer id of an upload that keeps what has arrived of it (every refusal but a creation's): refused, it stays
   * an unfinished upload, so that once it fits the next push resumes it from the server's offset instead of sending
   * it all again; it counts against the quota meanwhile, and goes with an abort or the server's expiry.
   */
  keptAs?: string | null;
}

/** A quota refusal (quotaExceeded). */
export class QuotaExceeded extends SnapferryError {
  /**
   * How many of the bytes judged lie past the quota's line: those before it fit, and a write keeps them
   * (server/upload-store/quota.ts).
   */
  readonly over: number;

  constructor(message: string, options: SnapferryErrorOptions & { over: number }) {
    super('quota_exceeded', message, options);
    this.over = options.over;
  }
}

/**
 * An upload that would not fit the client's quota. Retryable only when waiting can make it fit: when it fits beside
 * what the client's idle uploads hold, the others, which are being sent or received, may finish and free their share.
 * Otherwise final: retried, it was refused again and again (every 15 s, for as long as the idle ones were kept).
 */
export function quotaExceeded(f: QuotaShortfall): QuotaExceeded {
  const { client, size, quota, heldByOthers, sizeIsExact } = f;
  const idle = f.heldByIdle ?? 0;
  const keptAs = f.keptAs ?? null;
  const standing = standingOf(size, idle, quota);
  const what = sizeIsExact ? `an upload of ${size} bytes` : `this upload, at ${size} bytes and still growing,`;
  const message = refusalSentence(standing, { what, client, quota, heldByOthers, idle, kept: keptParts(keptAs) });
  const details = { client, size, quotaBytes: quota, heldByOthers, heldByIdle: idle, ...(keptAs === null ? {} : { transferId: keptAs, kept: true }) };
  return new QuotaExceeded(message, { retryable: standing === 'besideMoving', details, over: size + heldByOthers - quota });
}

/**
 * Why an upload does not fit: over the quota by itself, or beside what nothing frees by itself (final both), or
 * beside uploads that will end by themselves (retryable).
 */
type Standing = 'alone' | 'besideIdle' | 'besideMoving';

function standingOf(size: number, idle: number, quota: number): Standing {
  if (size > quota) return 'alone';
  return size + idle > quota ? 'besideIdle' : 'besideMoving';
}

/** What a refusal says of an upload it keeps (each empty for a creation's, which keeps nothing). */
interface KeptParts {
  held: string;
  resume: string;
  free: string;
}

function keptParts(keptAs: string | null): KeptParts {
  if (keptAs === null) return { held: '', resume: '', free: '' };
  return {
    held: `; the server keeps what has arrived of it (transfer ${keptAs}; it counts against the quota until it is received, aborted or expires)`,
    resume: ' (and restart serve), then push again and it resumes from there',
    free: `; or free it with snapferry abort ${keptAs}`,
  };
}

function refusalSentence(standing: Standing, p: { what: string; client: string; quota: number; heldByOthers: number; idle: number; kept: KeptParts }): string {
  const { what, client, quota, heldByOthers, idle, kept } = p;
  switch (standing) {
    case 'alone':
      return `${what} is over client ${client}'s quota of ${quota} bytes (413)${kept.held}: ask the server's admin to raise limits.quota in the server's config${kept.resume}${kept.free}`;
    case 'besideIdle':
      return `${what} does not fit client ${client}'s quota of ${quota} bytes (413): its other uploads hold ${heldByOthers} in the spool, ${idle} of it in uploads no push is sending now (kept after a refusal or a cut) and spools kept by failed transfers, which do not free themselves${kept.held}: abort the ones not needed (snapferry status lists them; snapferry abort ID), or ask the server's admin to raise limits.quota in the server's config${kept.resume}`;
    case 'besideMoving':
      return `${what} does not fit client ${client}'s quota of ${quota} bytes: its other uploads hold ${heldByOthers} in the spool (open ones, and spools kept by failed transfers)${kept.held}; let them finish or abort them (snapferry abort ID, or POST /v1/transfers/ID/abort), or ask the admin to raise limits.quota in the server's config`;
  }
}

/** `open` counts the client's uploads in progress and the spools its failed transfers keep (`keptByFailed` of them). */
export function tooManyUploads(client: string, open: number, keptByFailed: number, max: number): SnapferryError {
  const kept = keptByFailed > 0 ? ` (${keptByFailed} of them spools kept by failed transfers until they expire)` : '';
  return new SnapferryError(
    'too_many_uploads',
    `client ${client} already has ${open} open uploads${kept}, the limit is ${max} (429): let them finish, or abort the ones not needed (snapferry abort ID, or POST /v1/transfers/ID/abort), then try again`,
    { retryable: true, details: { client, open, keptByFailed, maxOpenUploads: max } },
  );
}

/** A creation over the client's rate (creationsPerMinute after creationBurst); `retryAfterMs` until the next is allowed. */
export function tooManyCreations(client: string, limits: Pick<UploadLimits, 'creationsPerMinute' | 'creationBurst'>, retryAfterMs: number): SnapferryError {
  const retryAfterSeconds = Math.max(1, Math.ceil(retryAfterMs / 1000));
  return new SnapferryError(
    'too_many_creations',
    `client ${client} created more than ${limits.creationBurst} uploads at once or ${limits.creationsPerMinute} a minute (429): try again in ${retryAfterSeconds} s, or ask the admin to raise creationsPerMinute`,
    { retryable: true, details: { client, retryAfterSeconds, ...limits } },
  );
}
