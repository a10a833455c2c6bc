/**
 * Runs the steps the transfer machine (server/transfers/machine.ts) decided, one after the other, on the parts that
 * do them: the catalog, the running receives, the spool, the retries, the retention. The decisions are not made
 * here; only the doing.
 */
import type { Catalog } from '../catalog.ts';
import type { Logger } from '../log.ts';
import type { Step } from './machine.ts';

export interface StepRunner {
  catalog: Pick<Catalog, 'updateTransfer' | 'addSnapshot'>;
  log: Logger;
  stopReceive(id: string, why: string): Promise<void>;
  restartReceive(id: string, why: string): Promise<void>;
  rewindSpool(id: string, frames: number): Promise<void>;
  /** Bytes the spool holds on disk now (for the log of a spool deleted on request). */
  spoolBytes(id: string): Promise<number>;
  dropSpool(id: string): Promise<void>;
  forgetRetries(id: string): void;
  retryLater(step: Extract<Step, { kind: 'retryLater' }>): Promise<void>;
  prune(client: string, volume: string): Promise<void>;
}

export async function runSteps(id: string, steps: readonly Step[], to: StepRunner): Promise<void> {
  for (const step of steps) await runStep(id, step, to);
}

async function runStep(id: string, step: Step, to: StepRunner): Promise<void> {
  switch (step.kind) {
    case 'record':
      await to.catalog.updateTransfer(id, step.change);
      return;
    case 'addSnapshot':
      return to.catalog.addSnapshot(step.snapshot);
    case 'stopReceive':
      return to.stopReceive(step.of ?? id, step.why);
    case 'restartReceive':
      return to.restartReceive(id, step.why);
    case 'rewindSpool':
      return to.rewindSpool(id, step.frames);
    case 'dropSpool': {
      const of = step.of ?? id;
      const freed = step.report ? await to.spoolBytes(of) : 0;
      await to.dropSpool(of);
      if (freed > 0) to.log.info({ transfer: of, state: step.report?.state, freedBytes: freed }, `spool of a transfer that is over ${step.report?.why ?? 'deleted on request'}`);
      return;
    }
    case 'forgetRetries':
      return to.forgetRetries(id);
    case 'retryLater':
      return to.retryLater(step);
    case 'prune':
      return to.prune(step.client, step.volume);
    case 'log':
      to.log[step.level](step.fields, step.message);
      return;
  }
}
