/** `runVolumes` as a test drives it: a fixed clock per run, and what it printed kept for assertions. */
import path from 'node:path';
import type { RunningServer } from '../../server/serve.ts';
import { ServerApi } from '../../client/http/api.ts';
import { runVolumes, type RunConfig, type RunOptions } from '../../client/run/run.ts';
import { createPair, recordingReporter, type Pair } from './harness.ts';

export interface RunRecord {
  exitCode: number;
  /** The summary lines, one per volume. */
  lines: string[];
  /** Notes and --dry-run detail. */
  notes: string[];
  /** Each transfer the pushes started, with its parent (null: full). */
  started: { snapshot: string; parent: string | null }[];
}

export type Run = (config: RunConfig, at: string, extra?: Partial<RunOptions>) => Promise<RunRecord>;

export function runAt(lockFile: string): Run {
  return async (config, at, extra = {}) => {
    const lines: string[] = [];
    const notes: string[] = [];
    const report = recordingReporter();
    const { exitCode } = await runVolumes(config, {
      lockFile,
      now: () => new Date(at),
      reporter: () => report,
      summary: (l) => lines.push(l),
      note: (l) => notes.push(l),
      push: { pollMs: 50, chunkSize: 256 * 1024 },
      ...extra,
    });
    return { exitCode, lines, notes, started: report.started };
  };
}

export interface HomeRun {
  pair: Pair;
  server: RunningServer;
  api: ServerApi;
  run: Run;
  /** One volume on the pair's source and snapshot folder, no retention. */
  home: { source: string; snapshotDir: string };
  /** `home` alone, to the server. */
  config: RunConfig;
}

/** A pair with its server up, and `run` with its lock on the client's btrfs, configured for one volume, home. */
export async function homeRun(t: Parameters<typeof createPair>[0], options: { fillMB: number }): Promise<HomeRun> {
  const pair = await createPair(t, options);
  const server = await pair.startServer();
  const home = { source: pair.source, snapshotDir: pair.snaps };
  return {
    pair,
    server,
    api: new ServerApi({ server: server.url }),
    run: runAt(path.join(pair.client.mountPoint, `run-${process.pid}.lock`)),
    home,
    config: { server: server.url, volumes: { home } },
  };
}
