/** `runVolumes` as a test drives it: a fixed clock per run, and what it printed kept for assertions. */
import { runVolumes, type RunConfig, type RunOptions } from '../../client/run/run.ts';
import { recordingReporter } from './harness.ts';

export interface RunRecord {
  exitCode: number;
  /** The summary lines, one per volume. */
  lines: string[];
  /** Notes and --dry-run detail. */
  notes: string[];
  /** Each transfer the pushes started, with its parent (null: full). */
  started: { snapshot: string; parent: string | null }[];
}

export function runAt(lockFile: string) {
  return async (config: RunConfig, at: string, extra: Partial<RunOptions> = {}): Promise<RunRecord> => {
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
