/**
 * What the fuzz targets hold the wire code to, besides "no crash": a failure is one of the project's typed errors
 * and nothing else; the same bytes pushed whole and in small slices give the same verdict; and, in refuse mode,
 * every command the send-stream policy lets through is one that btrfs receive, as modelled from btrfs-progs
 * (test/wire/sendstream-receive-model.ts), would not turn into a setuid/setgid file, a device node or file
 * capabilities. Any breach throws a plain Error, which jsfuzz records as a crash.
 */
import { FrameError } from '../../core/wire/frame-error.ts';
import { SendStreamError } from '../../core/wire/sendstream-errors.ts';
import { SendStreamParser } from '../../core/wire/sendstream-parser.ts';
import { SendStreamPolicyCheck, SendStreamPolicyError } from '../../core/wire/sendstream-policy.ts';
import type { SendStreamPolicy } from '../../core/wire/sendstream-policy.ts';
import { SendAttr, SendCmd, formatSendUuid } from '../../core/wire/sendstream-format.ts';
import { receiveStream } from '../wire/sendstream-receive-model.ts';

/** Another volume's snapshot that the policy lets CLONE read from (so CLONE commands get past that rule). */
const SIBLING = '9ccd62c5-1263-3d41-a5f0-be73a8576903';

/** Throws `err` on unless it is one of the errors bad input is meant to get. */
export function expectTyped(err: unknown): FrameError | SendStreamError | SendStreamPolicyError {
  if (err instanceof FrameError || err instanceof SendStreamError || err instanceof SendStreamPolicyError) return err;
  throw err;
}

/** The views of `bytes` in slices whose sizes cycle through `sizes` (each at least 1). */
export function sliced(bytes: Buffer, sizes: readonly number[]): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0, i = 0; at < bytes.length; i++) {
    const n = Math.max(1, sizes[i % sizes.length] ?? 1);
    out.push(bytes.subarray(at, at + n));
    at += n;
  }
  return out;
}

/** Slice sizes drawn from the input itself, so a case found is a case replayed. */
export function sliceSizes(bytes: Buffer): number[] {
  const sizes = [...bytes.subarray(0, 16)].map((b) => 1 + (b % 61));
  return sizes.length > 0 ? sizes : [1];
}

export interface Verdict {
  /** Indices of the commands the parser and the policy let through, in order. */
  accepted: number[];
  /** The command numbers, by index. */
  cmds: number[];
  /** The error's code and where it was noticed; null when the whole stream passed. */
  error: { code: string; offset: unknown; commandIndex: unknown } | null;
}

export type PolicyMode = 'refuse' | 'allow';

/**
 * Runs `chunks` of one send stream through SendStreamParser with the policy wired in as SendStreamCheck wires it.
 * The policy's parent is whatever the stream's first command names, so that the rules after it get exercised.
 */
export function judge(chunks: readonly Buffer[], mode: PolicyMode): Verdict {
  const verdict: Verdict = { accepted: [], cmds: [], error: null };
  let rules: SendStreamPolicyCheck | undefined;
  const parser = new SendStreamParser({
    onCommand: (command) => {
      if (rules === undefined) {
        const parent = command.cmd === SendCmd.SNAPSHOT ? uuidOf(command.attributes) : null;
        const policy: SendStreamPolicy = {
          parentUuid: parent,
          cloneSources: parent === null ? [SIBLING] : [parent, SIBLING],
          allowDevices: mode === 'allow',
          allowSetuid: mode === 'allow',
        };
        rules = new SendStreamPolicyCheck(policy);
      }
      rules.visit(command);
      verdict.accepted.push(command.index);
      verdict.cmds[command.index] = command.cmd;
    },
  });
  try {
    for (const chunk of chunks) parser.push(chunk);
    parser.end();
  } catch (err) {
    const typed = expectTyped(err);
    verdict.error = { code: typed.code, offset: typed.details.offset, commandIndex: typed.details.commandIndex };
  }
  return verdict;
}

function uuidOf(attributes: readonly { type: number; value: Buffer }[]): string | null {
  const value = attributes.findLast((a) => a.type === SendAttr.CLONE_UUID)?.value;
  return value?.length === 16 ? formatSendUuid(value) : null;
}

/**
 * The whole oracle for one raw send stream: typed errors only; whole and sliced agree; refuse mode accepts a prefix
 * of what allow mode accepts; and nothing accepted in refuse mode is privileged by the model of btrfs receive.
 */
export function checkSendStream(stream: Buffer): void {
  const whole = judge([stream], 'refuse');
  const pieces = judge(sliced(stream, sliceSizes(stream)), 'refuse');
  if (JSON.stringify(whole) !== JSON.stringify(pieces)) {
    throw new Error(`the verdict depends on how the stream is sliced: ${JSON.stringify(whole)} vs ${JSON.stringify(pieces)}`);
  }
  const lenient = judge([stream], 'allow');
  if (whole.accepted.some((index, i) => lenient.accepted[i] !== index)) {
    throw new Error(`refuse mode let through commands that allow mode did not: ${JSON.stringify(whole.accepted)} vs ${JSON.stringify(lenient.accepted)}`);
  }
  assertNothingPrivileged(stream, whole);
}

/** Every command `verdict` let through is, to the model of btrfs receive, the same command and harmless. */
export function assertNothingPrivileged(stream: Buffer, verdict: Verdict): void {
  const run = receiveStream(stream);
  for (const index of verdict.accepted) {
    // btrfs receive stopped before this command (at one that failed, or at END): it applies nothing of it.
    const read = run.commands[index];
    if (read === undefined) continue;
    if (read.cmd !== verdict.cmds[index]) {
      throw new Error(`command #${index}: the parser read command ${verdict.cmds[index]}, btrfs receive would read ${read.cmd}`);
    }
    if (read.effect.applied && read.effect.privileged !== null) {
      throw new Error(`command #${index} (${read.cmd}) passed the refuse policy, and btrfs receive would make ${read.effect.privileged} of it`);
    }
  }
}
