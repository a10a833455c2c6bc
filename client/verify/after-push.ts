/**
 * `run`'s verify after a volume's push (the config's `verify:` key): the newest snapshot both sides hold, and with
 * `{ sample: N }` N older ones, a different few each run. Which ones: a counter per volume in a small state file
 * beside the run lock, one more each run.
 */
import fs from 'node:fs/promises';
import type { VerifySetting } from '../config.ts';
import { formatBytes } from '../progress/format.ts';
import { verify } from './verify.ts';
import { defaultDigestCache } from './local-digests.ts';
import { describeOutcome, onTheLine, type VerifyView } from './view.ts';

export interface AfterPush {
  server: string;
  volume: string;
  snapshotDir: string;
  setting: NonNullable<VerifySetting>;
  headers?: Record<string, string>;
  signal?: AbortSignal;
  caFile?: string;
  env?: Record<string, string | undefined>;
  stallMs?: number;
  /** The rotation's state file (beside the run lock); null: always the same sample. */
  stateFile: string | null;
  /** Where each snapshot's result goes (its lines, differences included). */
  note: (line: string) => void;
  /** This machine's saved digests (client/verify/local-digests.ts); default: defaultDigestCache(). */
  digestCache?: string | null;
}

/** The summary part, e.g. `verified home.20261125T013000Z (1.2 KiB on the line)`; a difference throws VerifyDifferences. */
export async function verifyAfterPush(a: AfterPush): Promise<string> {
  const rotation = a.setting.sample > 0 ? await nextRotation(a.stateFile, a.volume) : 0;
  const view: VerifyView = {
    note: (m) => a.note(`${a.volume}: note: ${m}`),
    progress: () => undefined,
    outcome: (o) => describeOutcome(o).forEach((l) => a.note(`${a.volume}: ${l}`)),
    close: () => undefined,
  };
  const outcomes = await verify(
    {
      server: a.server, volumes: [{ volume: a.volume, snapshots: [a.snapshotDir] }], readData: a.setting.readData,
      sample: a.setting.sample, rotation, digestCache: a.digestCache === undefined ? defaultDigestCache() : a.digestCache,
      ...(a.headers ? { headers: a.headers } : {}),
      ...(a.signal ? { signal: a.signal } : {}),
      ...(a.caFile !== undefined ? { caFile: a.caFile } : {}),
      ...(a.env ? { env: a.env } : {}),
      ...(a.stallMs ? { stallMs: a.stallMs } : {}),
    },
    view,
  );
  const line = outcomes.reduce((n, o) => n + onTheLine(o), 0);
  return `verified ${outcomes.map((o) => o.snapshot).join(', ')} (${formatBytes(line)} on the line)`;
}

/** This run's position in the rotation of `volume`'s older snapshots; the next run gets the one after. */
async function nextRotation(file: string | null, volume: string): Promise<number> {
  if (file === null) return 0;
  let counters: Record<string, number> = {};
  try {
    const parsed: unknown = JSON.parse(await fs.readFile(file, 'utf8'));
    if (parsed && typeof parsed === 'object') counters = parsed as Record<string, number>;
  } catch {
    // None yet, or unreadable: start the rotation again.
  }
  const now = Number.isSafeInteger(counters[volume]) ? counters[volume]! : 0;
  // Not worth failing a run for: a counter lost starts the rotation again.
  await fs.writeFile(file, JSON.stringify({ ...counters, [volume]: now + 1 })).catch(() => undefined);
  return now;
}
