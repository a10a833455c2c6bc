/**
 * The operating system saying a disk is full, however it reached us: an errno on a write (ENOSPC, or EDQUOT for a
 * quota), or a btrfs command's stderr that its error message carries. Both sides turn it into a typed error of their
 * own (server/disk-full.ts: 507 and a paused upload; client/restore/disk-full.ts: exit 75 and what to free).
 */
const FULL_CODES: ReadonlySet<string> = new Set(['ENOSPC', 'EDQUOT']);

/**
 * Whether `err`, or anything in its cause chain, is a full disk. `typed` recognises a side's own disk-full error in
 * the chain, which has a code of its own.
 */
export function isDiskFull(err: unknown, typed: (e: unknown) => boolean = () => false): boolean {
  let e: unknown = err;
  for (let depth = 0; e !== null && typeof e === 'object' && depth < 6; depth++) {
    if (typed(e)) return true;
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && FULL_CODES.has(code)) return true;
    if (e instanceof Error && /No space left on device|Disk quota exceeded/.test(e.message)) return true;
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}
