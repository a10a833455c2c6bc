/**
 * `snapferry push`: plan -> send -> frame -> upload -> wait, for each snapshot the server lacks (DESIGN.md steps
 * 1-2 and 6). It returns only once the server has received and checked every one, or throws a typed error that
 * says what to do.
 */
import { SnapferryError } from '../core/errors.ts';
import { parseName, type SafeName } from '../core/names.ts';
import { planPush, type LocalSnapshot, type PlanStep } from '../core/plan.ts';
import { META, WIRE_FORMAT, finalStates, type Transfer } from '../core/protocol.ts';
import { DEFAULT_CHUNK_SIZE } from '../core/wire/index.ts';
import { ServerApi } from './api.ts';
import { findParentCandidates, resolveRequested } from './local-snapshots.ts';
import { startFramedSend } from './framed-send.ts';
import { uploadFramed } from './tus-upload.ts';
import type { Reporter } from './report.ts';

export interface PushOptions {
  server: string;
  volume: string;
  snapshots: readonly string[];
  chunkSize?: number;
  level?: number;
  /** Bytes per PATCH at most. */
  patchBytes?: number;
  pollMs?: number;
  headers?: Record<string, string>;
  signal?: AbortSignal;
}

export interface PushResult {
  sent: { snapshot: string; parent: string | null; transfer: Transfer }[];
  present: string[];
  skipped: string[];
}

export class PushError extends SnapferryError {}

const DEFAULT_PATCH_BYTES = 64 * 1024 * 1024;

export async function push(options: PushOptions, report: Reporter): Promise<PushResult> {
  const volume = parseName(options.volume, 'volume');
  const api = new ServerApi({ server: options.server, ...(options.headers ? { headers: options.headers } : {}) });
  const requested = await resolveRequested(options.snapshots);
  if (requested.length === 0) throw new PushError('nothing_to_push', 'no read-only snapshots found in the paths given');

  const held = await api.snapshots(volume);
  const wanted = new Set([...held.snapshots, ...held.removed].map((s) => s.uuid));
  const candidates = await findParentCandidates(requested[0]!.path, wanted);
  const plan = planPush({ requested, candidates, server: held.snapshots, removed: held.removed });
  for (const note of plan.notes) report.note(note);
  for (const s of plan.present) report.note(`${s.name} is already on the server`);

  const sent: PushResult['sent'] = [];
  for (const step of plan.steps) {
    const transfer = await pushOne(api, volume, step, options, report);
    sent.push({ snapshot: step.snapshot.name, parent: step.parent?.name ?? null, transfer });
  }
  return { sent, present: plan.present.map((s) => s.name), skipped: plan.skipped.map((s) => s.name) };
}

async function pushOne(api: ServerApi, volume: SafeName, step: PlanStep, options: PushOptions, report: Reporter): Promise<Transfer> {
  const { snapshot, parent } = step;
  const chunkSize = options.chunkSize ?? DEFAULT_CHUNK_SIZE;
  report.startTransfer(snapshot.name, parent?.name ?? null);
  let rawSent = 0;
  const framed = startFramedSend({
    snapshotPath: snapshot.path,
    parentPath: parent?.path ?? null,
    chunkSize,
    level: options.level ?? 3,
    maxSlice: options.patchBytes ?? DEFAULT_PATCH_BYTES,
    ...(options.signal ? { signal: options.signal } : {}),
    onFrame: (f) => {
      if (f.kind === 'data') rawSent = f.rawOffset + f.rawLength;
    },
  });
  let transferId: string | null = null;
  try {
    await uploadFramed({
      server: api.base.toString(),
      metadata: metadataFor(volume, snapshot, parent, chunkSize),
      source: framed.source,
      chunkSize: options.patchBytes ?? DEFAULT_PATCH_BYTES,
      ...(options.headers ? { headers: options.headers } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
      onUrl: (url) => {
        transferId = url.split('/').pop() ?? null;
      },
      onProgress: (wire) => report.progress({ wireBytes: wire, rawBytes: rawSent }),
    });
    await framed.done;
  } catch (err) {
    // The pipeline's own failure (btrfs send, a bad stream) explains more than the upload's.
    const pipelineFailure = await framed.done.then(() => null, (e: unknown) => e);
    throw pipelineFailure ?? err;
  }
  if (transferId === null) throw new PushError('no_transfer_id', 'the server did not say where the upload went');
  report.waiting(snapshot.name);
  const done = await waitForTransfer(api, transferId, options.pollMs ?? 250, options.signal);
  if (done.state !== 'received') {
    throw new PushError(
      done.error?.code ?? 'transfer_failed',
      `the server could not receive ${snapshot.name}: ${done.error?.message ?? done.state}`,
      { details: { transferId: done.id } },
    );
  }
  report.received(snapshot.name, done);
  return done;
}

function metadataFor(volume: SafeName, snapshot: LocalSnapshot, parent: LocalSnapshot | null, chunkSize: number): Record<string, string> {
  return {
    [META.volume]: volume,
    [META.snapshot]: snapshot.name,
    [META.uuid]: snapshot.uuid,
    ...(parent ? { [META.parentUuid]: parent.uuid } : {}),
    [META.format]: WIRE_FORMAT,
    [META.chunkSize]: String(chunkSize),
  };
}

export async function waitForTransfer(api: ServerApi, id: string, pollMs: number, signal?: AbortSignal): Promise<Transfer> {
  for (;;) {
    signal?.throwIfAborted();
    const t = await api.transfer(id);
    if (finalStates.includes(t.state)) return t;
    await new Promise((r) => setTimeout(r, pollMs));
  }
}
