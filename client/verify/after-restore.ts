/**
 * Restore's last step: the restored snapshot checked against the server's digest of its copy, as `verify` does. A
 * difference fails the restore (exit 3), with each difference in the restore's notes.
 */
import { ServerApi } from '../http/api.ts';
import { formatBytes } from '../progress/format.ts';
import type { Reporter } from '../progress/report.ts';
import { checkSnapshot, lineMeter, VerifyDifferences, type VerifyOutcome } from './check.ts';
import { describeOutcome, onTheLine } from './view.ts';

export interface RestoredCheck {
  /** The restore's API: its server, headers, transport and signal are the check's too. */
  api: ServerApi;
  headers: Record<string, string>;
  volume: string;
  snapshot: string;
  /** Where the restored snapshot is. */
  path: string;
  /** Where it is kept when it differs (the restore moves it there after this throws); `path` by default. */
  keptAt?: string;
  /** The local snapshot it was received on, or null for a full restore. */
  parentPath?: string | null;
  client?: string;
  signal?: AbortSignal;
}

export async function checkRestored(c: RestoredCheck, report: Reporter): Promise<VerifyOutcome> {
  const { count, meter } = lineMeter();
  const api = new ServerApi({ server: c.api.base.toString(), transport: c.api.transport, headers: c.headers, meter, ...(c.signal ? { signal: c.signal } : {}) });
  report.note(`${c.snapshot}: checking the restored snapshot against the server's digest of its copy`);
  const outcome = await checkSnapshot(
    {
      api, line: count, volume: c.volume, snapshot: c.snapshot, path: c.path, readData: false,
      ...(c.client !== undefined ? { client: c.client } : {}),
      ...(c.signal ? { signal: c.signal } : {}),
    },
    { note: (m) => report.note(m), progress: () => undefined },
  );
  if (outcome.equal) {
    report.note(`${c.snapshot}: identical to the server's copy (${outcome.entries} entries; ${formatBytes(onTheLine(outcome))} on the line)`);
    return outcome;
  }
  for (const line of describeOutcome(outcome)) report.note(line);
  const kept = c.keptAt ?? c.path;
  throw new VerifyDifferences(
    `the restored ${c.snapshot} differs from the server's copy in ${outcome.differences.length}${outcome.truncated ? '+' : ''} path(s) (listed above); ` +
      `it is kept for inspection at ${kept}, not under its name: delete it (btrfs subvolume delete ${kept}) and ${whatNext(c.parentPath ?? null)}`,
    { snapshot: c.snapshot, path: kept, differences: outcome.differences.length, parent: c.parentPath ?? null },
  );
}

/**
 * An incremental restore is the server's difference applied to the local parent: a parent changed here since it was
 * received (made writable and written) makes the result differ with the server's copy intact. So that is looked at
 * first, and the server only once a full restore differs too.
 */
function whatNext(parentPath: string | null): string {
  if (parentPath === null) return "restore again; if it differs again, have the server's admin check the server's copy";
  return (
    `restore it in full: it was received on ${parentPath} here, which may have been changed since it was itself received; ` +
    "restore into a folder without that snapshot (or give --parent-dir an empty folder on the same filesystem), and if a full restore differs too, have the server's admin check the server's copy"
  );
}
