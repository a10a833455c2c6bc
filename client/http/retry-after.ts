/**
 * The server's `Retry-After` (RFC 9110 section 10.2.3), as pure functions: read at the boundary where an answer
 * becomes a SnapferryError (client/upload/tus.ts, client/http/api.ts) into `details.retryAfterMs`, and honoured by the
 * retry loops (client/push/send-snapshot.ts, client/restore/restore.ts), which wait max(their own backoff, the server's word).
 */
import type { SnapferryError } from '../../core/errors.ts';

/**
 * The longest wait a server may ask for. Its refusals (too many connections, creations, uploads; busy) heal within
 * seconds to minutes; a larger value is a broken or hostile server that must not park a push for ever.
 */
export const MAX_RETRY_AFTER_MS = 10 * 60_000;

/**
 * `Retry-After = HTTP-date / delay-seconds`, `delay-seconds = 1*DIGIT`: milliseconds from `nowMs`, or null when
 * the value is absent or neither form. A date in the past means no wait (0).
 */
export function parseRetryAfter(value: string | null | undefined, nowMs: number): number | null {
  if (value === null || value === undefined) return null;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  // An HTTP-date (IMF-fixdate, or the obsolete RFC 850 and asctime forms a recipient MUST accept), always in GMT.
  if (!/GMT$|^\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}$/.test(v)) return null;
  const at = Date.parse(/GMT$/.test(v) ? v : `${v} GMT`);
  if (Number.isNaN(at)) return null;
  return Math.max(0, at - nowMs);
}

/**
 * The wait the server asked for, for an error's details: the header first (it is what RFC 9110 defines), else the
 * JSON body's `retryAfterSeconds` (a proxy may drop headers it does not know, never the body).
 */
export function retryAfterDetails(header: string | null | undefined, bodySeconds: unknown, nowMs: number): { retryAfterMs?: number } {
  const fromHeader = parseRetryAfter(header, nowMs);
  if (fromHeader !== null) return { retryAfterMs: fromHeader };
  if (typeof bodySeconds === 'number' && Number.isFinite(bodySeconds) && bodySeconds > 0) return { retryAfterMs: bodySeconds * 1000 };
  return {};
}

/** The wait a failure's server asked for (details.retryAfterMs), or null. */
export function retryAfterOf(err: unknown): number | null {
  const ms = (err as SnapferryError | undefined)?.details?.retryAfterMs;
  return typeof ms === 'number' && Number.isFinite(ms) && ms >= 0 ? ms : null;
}

export interface RetryWait {
  ms: number;
  /** Why: the server's code, what it asked for and its message; null when the own backoff decided alone. */
  because: string | null;
}

/** max(own backoff, the server's Retry-After), the latter bounded by `capMs`. */
export function chooseWait(backoffMs: number, err: unknown, capMs: number = MAX_RETRY_AFTER_MS): RetryWait {
  const asked = retryAfterOf(err);
  if (asked === null) return { ms: backoffMs, because: null };
  const bounded = Math.min(asked, capMs);
  const e = err as SnapferryError;
  const capped = asked > capMs ? ` (capped at ${Math.round(capMs / 1000)} s)` : '';
  return {
    ms: Math.max(backoffMs, bounded),
    because: `the server refused for now (${e.code}) and asks to wait ${Math.round(asked / 1000)} s${capped}: ${e.message}`,
  };
}
