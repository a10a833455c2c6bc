/**
 * `run --dry-run`'s push step: the plan `push --dry-run` prints for the volume's folder (client/push/plan-view.ts),
 * and the snapshot the run would take, which does not exist yet: it would go last, on the last snapshot planned or,
 * with none, on the newest the server holds of those here (full when there is none). That is the parent the plan
 * picks for the newest snapshot, unless it passes that one over (changed or sealed otherwise): push then says so.
 */
import { push, type PlannedSend, type PushOptions } from '../push/push.ts';
import { describePlanned } from '../push/plan-view.ts';
import type { Reporter } from '../progress/report.ts';

export interface PushPreview {
  /** What the summary line says, e.g. `would push 2`. */
  part: string;
  /** The plan as `push --dry-run` prints it, line by line, without a prefix. */
  lines: string[];
}

/**
 * `options` is the push a real run makes of the volume's folder; `toTake` the name of the snapshot the run would
 * take (null: none due); `holdsSnapshots` whether the folder holds any of the volume's yet (without, there is no plan
 * to ask the server for).
 */
export async function previewPush(options: PushOptions, reporter: Reporter, toTake: string | null, holdsSnapshots: boolean): Promise<PushPreview> {
  const result = holdsSnapshots ? await push({ ...options, dryRun: true }, reporter) : { planned: [], present: [] };
  const planned: PlannedSend[] = [...(result.planned ?? [])];
  if (toTake !== null) {
    const parent = planned.at(-1)?.snapshot ?? result.present.at(-1) ?? null;
    planned.push({ snapshot: toTake, parent, rawBytes: null, toBeTaken: true });
  }
  if (planned.length === 0 && !holdsSnapshots) return { part: 'nothing to push', lines: [] };
  const lines = describePlanned('', planned).split('\n').filter((l) => l !== '');
  return { part: `would push ${planned.length}`, lines };
}
