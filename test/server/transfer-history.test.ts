/** Which ended transfers the catalog forgets (server/transfer-history.ts). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { endedToForget, type TransferFacts } from '../../server/transfer-history.ts';
import type { TransferState } from '../../core/protocol.ts';

const HOUR = 3_600_000;
const NOW = Date.parse('2026-12-04T12:00:00Z');

const t = (id: string, state: TransferState, hoursAgo: number, client = 'alice'): TransferFacts => ({
  id, client, state, updatedAt: new Date(NOW - hoursAgo * HOUR).toISOString(),
});

test('ended transfers older than keepFor go; younger ones and any in progress stay, however old', () => {
  const all = [
    t('old-received', 'received', 200), t('old-failed', 'failed', 200), t('old-aborted', 'aborted', 200),
    t('young', 'aborted', 1), t('uploading', 'uploading', 500), t('waiting', 'waiting_for_space', 500), t('receiving', 'receiving', 500),
  ];
  assert.deepEqual(endedToForget(all, NOW, { keepForMs: 168 * HOUR, maxPerClient: 100 }, () => false).sort(), ['old-aborted', 'old-failed', 'old-received']);
});

test("past a client's newest maxPerClient ended transfers, the older ones go, in any input order; other clients count apart", () => {
  const all = [t('c', 'aborted', 3), t('a', 'aborted', 1), t('d', 'failed', 4), t('b', 'received', 2), t('x', 'aborted', 9, 'bob'), t('u', 'uploading', 10)];
  assert.deepEqual(endedToForget(all, NOW, { keepForMs: 1000 * HOUR, maxPerClient: 2 }, () => false).sort(), ['c', 'd']);
});

test('never one whose spool is still on disk: its record counts that spool against the quota, and lets it be aborted', () => {
  const all = [t('kept-spool', 'failed', 500), t('gone', 'failed', 500)];
  assert.deepEqual(endedToForget(all, NOW, { keepForMs: HOUR, maxPerClient: 0 }, (id) => id === 'kept-spool'), ['gone']);
});
