/**
 * A push that finds its stream whole on the server but not received (issue 16): the error it stops with, its exit
 * code, and the words; and what `snapferry abort` says it did.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Transfer } from '../../../core/protocol.ts';
import { ReceiveWaiting, WAIT_SOON_MS, describeWait, keepWaiting, lastWords, receiveWaitingMessage } from '../../../client/push/receive-waiting.ts';
import { EXIT, exitCodeFor } from '../../../client/exit-codes.ts';
import { describeAbort } from '../../../client/status/abort.ts';

const MiB = 1024 * 1024;
const NOW = Date.parse('2026-12-04T12:00:00Z');

function transfer(over: Partial<Transfer>): Transfer {
  return {
    id: '9ac10b2d00000000000000000000abcd', client: 'default', volume: 'home', snapshot: 'home.20261204T0100', uuid: 'u', parentUuid: null,
    state: 'waiting_for_space', createdAt: '2026-12-04T10:00:00Z', updatedAt: '2026-12-04T11:00:00Z', chunkSize: 4 * MiB,
    wireOffset: 60 * MiB, framesVerified: 29, rawBytes: 114.5 * MiB, rawEstimate: null, chain: '',
    error: { code: 'btrfs_failed', message: 'btrfs receive -e -- /v exited with code 1:\nAt subvol .incoming-x\nERROR: writing to a failed: No space left on device', at: '2026-12-04T11:00:00Z' },
    lastInterruption: null, interruptions: 0, sendStream: 'v1', rawReceived: 0, wireArrived: 0, spoolBytes: 60 * MiB,
    wait: { reason: 'disk_full', since: '2026-12-04T11:00:00Z', tries: 3, nextTryAt: '2026-12-04T12:04:00Z', neededBytes: 114.5 * MiB, freeBytes: 3 * MiB },
    ...over,
  };
}

test('a stream waiting for space: exit 75, and the push says the server has it all and what it needs', () => {
  const err = new ReceiveWaiting(transfer({}), NOW);
  assert.equal(err.code, 'receive_waiting');
  assert.equal(err.retryable, true);
  assert.equal(exitCodeFor(err), EXIT.temporary);
  assert.equal(err.details.transferId, '9ac10b2d00000000000000000000abcd');
  assert.equal(
    err.message,
    'home.20261204T0100: the server has the whole stream (114.5 MiB) but has not received it yet: its disk is full (it needs about ' +
      '114.5 MiB free, has 3.0 MiB): it receives by itself once space is freed on the server, or tries again in 4m00s (3 tries so far); ' +
      'nothing needs sending again, run push later to see it received',
  );
});

test('a stream too big for the server\'s filesystem: exit 1 at once, in the server\'s words; status says a bigger disk', () => {
  const t = transfer({
    wait: { reason: 'disk_full', since: '2026-12-04T11:00:00Z', tries: 1, nextTryAt: '2026-12-04T12:00:10Z', neededBytes: 114.5 * MiB, freeBytes: 3 * MiB, filesystemBytes: 128 * MiB },
    error: { code: 'filesystem_too_small', message: "the server's filesystem is too small for this stream: ... Give the server root a bigger disk ...", at: 'x' },
  });
  assert.equal(keepWaiting(t, NOW, 0), false, 'no try soon can help');
  const err = new ReceiveWaiting(t, NOW);
  assert.equal(err.code, 'server_filesystem_too_small');
  assert.equal(err.retryable, false);
  assert.equal(exitCodeFor(err), EXIT.failed);
  assert.match(err.message, /^home\.20261204T0100: the server has the whole stream \(114\.5 MiB\) but has not received it yet: the server's filesystem is too small/);
  assert.match(describeWait(t.wait!, NOW), /^its filesystem is too small for this stream \(with its spool it needs more than the 128\.0 MiB the filesystem has in all, so freeing space cannot help\): give the server root a bigger disk/);
});

test('another fault of the server: its own words, last line first', () => {
  const t = transfer({
    state: 'waiting_to_retry',
    wait: { reason: 'server_fault', since: '2026-12-04T11:00:00Z', tries: 1, nextTryAt: '2026-12-04T11:59:00Z', neededBytes: null, freeBytes: 80 * 1024 * MiB },
    error: { code: 'btrfs_failed', message: 'btrfs receive exited with code 1:\nERROR: writing to a failed: Input/output error\n', at: 'x' },
  });
  assert.match(receiveWaitingMessage(t, NOW), /its receive failed for the server's own reasons \(1 try so far\); it tries again by itself now \(last failure: ERROR: writing to a failed: Input\/output error\); nothing needs sending again/);
  assert.equal(lastWords(`${'x'.repeat(300)}`).length, 160);
  assert.equal(describeWait({ ...t.wait!, nextTryAt: 'never' }, NOW), "its receive failed for the server's own reasons (1 try so far); it tries again by itself now");
});

test('a push waits on for a try that is near or for space that is back, a minute at most, then stops', () => {
  const far = transfer({});
  assert.equal(keepWaiting(far, NOW, 0), false, 'little free space, next try in 4 min: stop now (exit 75)');
  const near = transfer({ wait: { ...far.wait!, nextTryAt: new Date(NOW + WAIT_SOON_MS).toISOString() } });
  assert.equal(keepWaiting(near, NOW, 0), true);
  const spaceBack = transfer({ wait: { ...far.wait!, freeBytes: 200 * MiB } });
  assert.equal(keepWaiting(spaceBack, NOW, 0), true, 'the server starts it at its next look');
  assert.equal(keepWaiting(spaceBack, NOW, 2 * WAIT_SOON_MS + 1), false, 'but not for ever');
  const fault = transfer({ state: 'waiting_to_retry', wait: { ...far.wait!, reason: 'server_fault', neededBytes: null, freeBytes: 200 * MiB } });
  assert.equal(keepWaiting(fault, NOW, 0), false, 'free space does not matter to an I/O error');
  assert.equal(keepWaiting(transfer({ wait: null }), NOW, 0), false);
});

test('abort says what it did', () => {
  const uploading = transfer({ state: 'uploading', wait: null, error: null });
  assert.equal(describeAbort(uploading, { ...uploading, state: 'aborted', spoolBytes: 0 }), 'aborted transfer 9ac10b2d00000000000000000000abcd (home/home.20261204T0100), which was uploading; deleted its spool (60.0 MiB)');
  const failed = transfer({ state: 'failed', wait: null });
  assert.equal(describeAbort(failed, { ...failed, spoolBytes: 0 }), 'transfer 9ac10b2d00000000000000000000abcd (home/home.20261204T0100) was failed; deleted its spool (60.0 MiB)');
  const received = transfer({ state: 'received', wait: null, spoolBytes: 0 });
  assert.match(describeAbort(received, received), /was received and held no spool: nothing to do$/);
});
