/** `snapferry status`: the report built from the server's answers and the local folders, and its text at 100 columns. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildStatusReport, type StatusInput } from '../../../client/status/data.ts';
import { fitEnd, renderStatus, STATUS_WIDTH } from '../../../client/status/view.ts';
import type { Snapshot, Transfer } from '../../../core/protocol.ts';
import type { LocalSnapshot } from '../../../core/plan.ts';

const NOW = Date.parse('2025-03-01T12:00:00Z');
const MiB = 1024 * 1024;

function snapshot(name: string, uuid: string, receivedAt: string): Snapshot {
  return { name, uuid, serverUuid: `srv-${uuid}`, parentUuid: null, receivedAt, rawBytes: 10 * MiB, wireBytes: 4 * MiB, transferId: null, altered: null };
}

function local(name: string, uuid: string, generation: number): LocalSnapshot {
  return { name, path: `/snaps/${name}`, uuid, localUuid: uuid, origin: 'src', generation, created: null, time: null };
}

function transfer(over: Partial<Transfer>): Transfer {
  return {
    id: '3f2a9c1e00000000000000000000abcd', client: 'default', volume: 'home', snapshot: 'home.20250301T0300', uuid: 'u3',
    parentUuid: 'u2', state: 'uploading', createdAt: '2025-03-01T07:00:00Z', updatedAt: '2025-03-01T11:00:00Z', chunkSize: MiB,
    wireOffset: 412 * MiB, framesVerified: 1234, rawBytes: 1234 * MiB, rawEstimate: 4096 * MiB, chain: '', error: null,
    lastInterruption: null, interruptions: 0, sendStream: 'v1', rawReceived: 0, wireArrived: 0, wait: null, spoolBytes: 0, ...over,
  };
}

function input(over: Partial<StatusInput> = {}): StatusInput {
  return {
    url: 'https://backup.example.net',
    status: { service: 'snapferry', version: '0.1.0', uptimeSeconds: 3 * 86_400 + 4 * 3600, freeBytes: 812 * 1024 * MiB, volumes: 1, snapshots: 2, transfers: {}, receiveStreamVersions: [1, 2], orphanedSpools: { count: 0, bytes: 0 } },
    volumes: [{ name: 'home', snapshots: 2, rawBytes: 20 * MiB, newest: snapshot('home.20250228T0300', 'u2', '2025-03-01T10:00:00Z'), altered: [], sizeUnknown: [] }],
    transfers: [],
    local: {},
    serverSnapshots: {},
    ...over,
  };
}

function assertFits(text: string): void {
  for (const line of text.split('\n')) assert.ok(line.length <= STATUS_WIDTH, `${line.length} columns: ${line}`);
}

test('volumes: the newest snapshot on each side, and how many local ones the server lacks', () => {
  const report = buildStatusReport(input({
    local: {
      home: { dir: '/snaps', snapshots: [local('home.20250301T0300', 'u3', 30), local('home.20250228T0300', 'u2', 20), local('home.20250227T0300', 'u1', 10)] },
      // Configured on this machine, never pushed: a row all the same.
      work: { dir: '/snaps-work', snapshots: [] },
      gone: { dir: '/nowhere', error: 'ENOENT: no such file or directory' },
    },
    serverSnapshots: { home: [{ uuid: 'u1', name: 'home.20250227T0300' }, { uuid: 'u2', name: 'home.20250228T0300' }] },
  }));
  assert.deepEqual(report.volumes.map((v) => [v.name, v.snapshots, v.newest?.name ?? null, v.local]), [
    ['gone', 0, null, { dir: '/nowhere', error: 'ENOENT: no such file or directory' }],
    ['home', 2, 'home.20250228T0300', { dir: '/snaps', snapshots: 3, newest: 'home.20250301T0300', notOnServer: 1 }],
    ['work', 0, null, { dir: '/snaps-work', snapshots: 0, newest: null, notOnServer: 0 }],
  ]);
  const text = renderStatus(report, NOW);
  assertFits(text);
  assert.match(text, /^server https:\/\/backup\.example\.net: snapferry 0\.1\.0, up 3d04h, 812\.0 GiB free$/m);
  assert.match(text, /^VOLUME +SNAPSHOTS +NEWEST ON SERVER +RECEIVED +NEWEST LOCAL +UNSENT$/m);
  assert.match(text, /^home +2 +home\.20250228T0300 +2h00m ago +home\.20250301T0300 +1$/m);
  assert.match(text, /^work +0 +- +- +\(none\) +0$/m);
  assert.match(text, /^gone .*\(cannot list\)\n {2}\/nowhere: ENOENT/m);
});

test('UNSENT counts what a push would send: not a snapshot older than the server\'s newest, which the server\'s retention deleted', () => {
  // The server keeps 2, the client 4: u1 and u2 went to the server's retention; push skips them (older than u4).
  const report = buildStatusReport(input({
    local: { home: { dir: '/snaps', snapshots: [local('home.4', 'u4', 40), local('home.3', 'u3', 30), local('home.2', 'u2', 20), local('home.1', 'u1', 10)] } },
    serverSnapshots: { home: [{ uuid: 'u3', name: 'home.3' }, { uuid: 'u4', name: 'home.4' }] },
  }));
  assert.equal((report.volumes.find((v) => v.name === 'home')!.local as { notOnServer: number }).notOnServer, 0);
  const newer = buildStatusReport(input({
    local: { home: { dir: '/snaps', snapshots: [local('home.5', 'u5', 50), local('home.4', 'u4', 40), local('home.1', 'u1', 10)] } },
    serverSnapshots: { home: [{ uuid: 'u4', name: 'home.4' }] },
  }));
  assert.equal((newer.volumes.find((v) => v.name === 'home')!.local as { notOnServer: number }).notOnServer, 1, 'home.5 only');
});

test('UNSENT and NEWEST LOCAL count a snapshot made after the clock was set back (named before the server\'s newest) as push does', () => {
  const dated = (name: string, uuid: string, generation: number, iso: string): LocalSnapshot => ({ ...local(name, uuid, generation), time: new Date(iso) });
  const report = buildStatusReport(input({
    local: { home: { dir: '/snaps', snapshots: [
      dated('home.20250227T0300', 'u1', 10, '2025-02-27T03:00:00Z'), dated('home.20250228T0300', 'u2', 20, '2025-02-28T03:00:00Z'),
      dated('home.20000101T0000', 'u3', 30, '2000-01-01T00:00:00Z'),
    ] } },
    serverSnapshots: { home: [{ uuid: 'u1', name: 'home.20250227T0300' }, { uuid: 'u2', name: 'home.20250228T0300' }] },
  }));
  assert.deepEqual(report.volumes.find((v) => v.name === 'home')!.local, { dir: '/snaps', snapshots: 3, newest: 'home.20000101T0000', notOnServer: 1 });
});

test('without local folders there are no local columns', () => {
  const text = renderStatus(buildStatusReport(input()), NOW);
  assert.match(text, /^VOLUME +SNAPSHOTS +NEWEST ON SERVER +RECEIVED$/m);
  assert.doesNotMatch(text, /NEWEST LOCAL/);
  assert.match(text, /\(nothing in flight\)/);
  assert.doesNotMatch(text, /LAST ERROR/);
});

test('in flight: progress against the estimate, wire bytes, frames, state, and the last cut', () => {
  const report = buildStatusReport(input({
    transfers: [
      transfer({ rawReceived: 1100 * MiB, interruptions: 3, lastInterruption: '2025-03-01T11:48:00.000Z: cut at byte 431882240 (after 1030 verified frames)' }),
      transfer({ id: 'aa'.repeat(16), volume: 'work', snapshot: 'work.1', state: 'received', createdAt: '2025-02-01T00:00:00Z' }),
      transfer({ id: 'bb'.repeat(16), volume: 'media', snapshot: 'm1', rawEstimate: null, rawBytes: 5 * MiB, createdAt: '2025-03-01T08:00:00Z' }),
    ],
  }));
  assert.deepEqual(report.inFlight.map((t) => [t.volume, t.state, t.percent, t.wireBytes, t.frames]), [
    ['home', 'uploading', 30, 412 * MiB, 1234],
    ['media', 'uploading', null, 412 * MiB, 1234],
  ]);
  const text = renderStatus(report, NOW);
  assertFits(text);
  assert.match(text, /^home\/home\.20250301T0300 +uploading +1\.2 GiB +\/ ~4\.0 GiB +30% +412\.0 MiB +1234$/m);
  assert.match(text, /^ {2}transfer 3f2a9c1e, started 5h00m ago, 1\.1 GiB received, interrupted 3 times, last 12m00s ago: cut\n {2}at byte 431882240 \(after 1030 verified frames\)$/m);
  assert.match(text, /^media\/m1 +uploading +5\.0 MiB +412\.0 MiB +1234$/m, 'no estimate, no percentage');
  assert.doesNotMatch(text, /work\.1/, 'a received transfer is not in flight');
});

test('in flight: SENT is what the server holds, the frame still arriving included (a server that does not say: its verified bytes); FRAMES and % stay verified', () => {
  const report = buildStatusReport(input({
    transfers: [
      transfer({ wireOffset: 0, framesVerified: 0, rawBytes: 0, wireHeld: 2 * MiB + 512 * 1024 }),
      transfer({ id: 'cc'.repeat(16), volume: 'old', snapshot: 'o1', createdAt: '2025-03-01T09:00:00Z' }),
    ],
  }));
  assert.deepEqual(report.inFlight.map((t) => [t.volume, t.percent, t.wireBytes, t.frames]), [['home', 0, 2.5 * MiB, 0], ['old', 30, 412 * MiB, 1234]]);
  assert.match(renderStatus(report, NOW), /^home\/home\.20250301T0300 +uploading +0 B +\/ ~4\.0 GiB +0% +2\.5 MiB +0$/m);
});

test('in flight: whether a push is sending an upload right now (the server\'s lease on it), or it waits for the next push; a server that does not say, nothing', () => {
  const report = buildStatusReport(input({
    transfers: [
      transfer({ heldByPush: true }),
      transfer({ id: 'dd'.repeat(16), volume: 'work', snapshot: 'w1', heldByPush: false, createdAt: '2025-03-01T08:00:00Z' }),
      transfer({ id: 'ee'.repeat(16), volume: 'old', snapshot: 'o1', createdAt: '2025-03-01T09:00:00Z' }),
      // A whole stream is no upload: nobody sends it, and nobody needs to.
      transfer({ id: 'ff'.repeat(16), volume: 'media', snapshot: 'm1', state: 'receiving', heldByPush: false, createdAt: '2025-03-01T10:00:00Z' }),
    ],
  }));
  assert.deepEqual(report.inFlight.map((t) => [t.volume, t.heldByPush]), [['home', true], ['work', false], ['old', null], ['media', null]]);
  const text = renderStatus(report, NOW);
  assertFits(text);
  assert.match(text, /^ {2}transfer 3f2a9c1e, being sent by a push now, started 5h00m ago, 0 B received$/m);
  assert.match(text, /^ {2}transfer dddddddd, waiting for a push to resume it, started 4h00m ago, 0 B received$/m);
  assert.match(text, /^ {2}transfer eeeeeeee, started 3h00m ago, 0 B received$/m);
  assert.match(text, /^ {2}transfer ffffffff, started 2h00m ago, 0 B received$/m);
});

test('in flight: a volume the column cuts off is named on the line below', () => {
  const report = buildStatusReport(input({ transfers: [transfer({ volume: 'home', snapshot: 'home.20261206T011500Z' })] }));
  const text = renderStatus(report, NOW);
  assertFits(text);
  assert.match(text, /^…\/home\.20261206T011500Z +uploading/m);
  assert.match(text, /^ {2}transfer 3f2a9c1e, volume home, started /m);
  assert.doesNotMatch(renderStatus(buildStatusReport(input()), NOW), /, volume /, 'a name that fits says nothing more');
});

test('the last error: the newest any transfer recorded, wrapped to the width', () => {
  const message = 'no data arrived for 7d00h (the server expires unfinished uploads after 7d), so it deleted the upload and freed its spool; push again to start over';
  const report = buildStatusReport(input({
    transfers: [
      transfer({ id: 'cc'.repeat(16), state: 'failed', error: { code: 'receive_failed', message: 'older', at: '2025-02-20T00:00:00Z' } }),
      transfer({ id: 'dd'.repeat(16), state: 'failed', snapshot: 'home.20250220T0300', error: { code: 'upload_expired', message, at: '2025-02-27T12:00:00Z' } }),
    ],
  }));
  assert.deepEqual(report.lastError, {
    transferId: 'dd'.repeat(16), client: 'default', volume: 'home', snapshot: 'home.20250220T0300', state: 'failed',
    code: 'upload_expired', message, at: '2025-02-27T12:00:00Z',
  });
  const text = renderStatus(report, NOW);
  assertFits(text);
  assert.match(text, /^LAST ERROR {2}2d00h ago {2}home\/home\.20250220T0300 {2}\(transfer dddddddd, failed\)$/m);
  const wrapped = text.slice(text.indexOf('LAST ERROR')).split('\n').slice(1);
  assert.ok(wrapped.length >= 2 && wrapped.every((l) => l.startsWith('  ')), 'the message wraps, indented');
  assert.equal(wrapped.join(' ').replace(/\s+/g, ' ').trim(), `upload_expired: ${message}`);
});

test('an error of a snapshot received since is no news: not the last error, nor its spool listed', () => {
  const cannotApply = { code: 'sendstream_cannot_apply', message: 'btrfs receive cannot apply the stream', at: '2025-03-01T10:00:00Z' };
  const report = buildStatusReport(input({
    transfers: [
      transfer({ id: 'ee'.repeat(16), state: 'failed', error: cannotApply, updatedAt: '2025-03-01T10:00:00Z', spoolBytes: 0 }),
      transfer({ id: 'ff'.repeat(16), state: 'received', createdAt: '2025-03-01T11:00:00Z', updatedAt: '2025-03-01T11:30:00Z' }),
    ],
  }));
  assert.equal(report.lastError, null);
  assert.deepEqual(report.orphaned, []);
  assert.doesNotMatch(renderStatus(report, NOW), /LAST ERROR|SPOOLS OF ENDED/);
  // Received before it failed (sent again after the server lost it, say): the error is the news.
  const later = buildStatusReport(input({
    transfers: [
      transfer({ id: 'ee'.repeat(16), state: 'failed', error: { ...cannotApply, at: '2025-03-01T12:00:00Z' } }),
      transfer({ id: 'ff'.repeat(16), state: 'received', updatedAt: '2025-03-01T11:30:00Z' }),
    ],
  }));
  assert.equal(later.lastError?.transferId, 'ee'.repeat(16));
});

test('long names keep their end; an admin sees whose volume', () => {
  assert.equal(fitEnd('a-very-long-volume-name-indeed', 10), '…me-indeed');
  assert.equal(fitEnd('short', 10), 'short');
  const report = buildStatusReport(input({
    volumes: [{ client: 'alice', name: 'photos-archive-2025', snapshots: 12345, rawBytes: 0, newest: snapshot('photos-archive-2025.20250301T030000Z', 'p', '2025-03-01T11:00:00Z'), altered: [], sizeUnknown: [] }],
  }));
  const text = renderStatus(report, NOW);
  assertFits(text);
  assert.match(text, /^…-archive-2025 +12345 +…e-2025\.20250301T030000Z +1h00m ago$/m);
});

test('a stream waiting for space is in flight, saying what it needs; spools of ended transfers are listed', () => {
  const report = buildStatusReport(input({
    status: { ...input().status, freeBytes: 3 * MiB, orphanedSpools: { count: 1, bytes: 96 * MiB } },
    transfers: [
      transfer({
        state: 'waiting_for_space', rawBytes: 114 * MiB, rawEstimate: 114 * MiB, wireOffset: 60 * MiB, framesVerified: 29, spoolBytes: 60 * MiB,
        error: { code: 'btrfs_failed', message: 'btrfs receive exited with code 1:\nERROR: writing to a failed: No space left on device', at: '2025-03-01T11:30:00Z' },
        wait: { reason: 'disk_full', since: '2025-03-01T11:00:00Z', tries: 4, nextTryAt: '2025-03-01T12:05:00Z', neededBytes: 114 * MiB, freeBytes: 3 * MiB },
      }),
      transfer({ id: 'ee'.repeat(16), snapshot: 'home.20250220T0300', state: 'failed', spoolBytes: 96 * MiB, updatedAt: '2025-03-01T10:00:00Z',
        error: { code: 'sendstream_unsafe_path', message: 'refused', at: '2025-03-01T10:00:00Z' } }),
      transfer({ id: 'ff'.repeat(16), snapshot: 'home.20250219T0300', state: 'failed', spoolBytes: 0, updatedAt: '2025-02-20T10:00:00Z' }),
    ],
  }));
  assert.deepEqual(report.inFlight.map((t) => [t.state, t.wait?.neededBytes]), [['waiting_for_space', 114 * MiB]]);
  assert.deepEqual(report.orphaned.map((o) => [o.id, o.spoolBytes]), [['ee'.repeat(16), 96 * MiB]], 'a failed transfer without its spool is not listed');
  const text = renderStatus(report, NOW);
  assertFits(text);
  assert.match(text, /^home\/home\.20250301T0300 +waiting_for_space +114\.0 MiB +\/ ~114\.0 MiB +100% +60\.0 MiB +29$/m);
  const detail = text.slice(text.indexOf('The whole stream')).split('\n').slice(0, 4).join(' ').replace(/\s+/g, ' ');
  assert.match(detail, /^The whole stream is on the server, nothing is sent again; its disk is full \(it needs about 114\.0 MiB free, has 3\.0 MiB\): it receives by itself once space is freed on the server, or tries again in 5m00s \(4 tries so far\)\. Last failure: btrfs_failed: ERROR: writing to a failed: No space left on device/);
  assert.match(text, /^SPOOLS OF ENDED TRANSFERS: 1, 96\.0 MiB: `snapferry abort ID` deletes one now/m);
  assert.match(text, /^ {2}home\/home\.20250220T0300 +failed +2h00m ago +96\.0 MiB {2}eeeeeeee$/m);
});

test('a volume with snapshots changed by hand on the server names them, in the data and the text', () => {
  const report = buildStatusReport(input({
    volumes: [{ name: 'home', snapshots: 2, rawBytes: 20 * MiB, newest: snapshot('home.20250228T0300', 'u2', '2025-03-01T10:00:00Z'), altered: ['home.20250227T0300'], sizeUnknown: [] }],
  }));
  assert.deepEqual(report.volumes.map((v) => [v.name, v.altered]), [['home', ['home.20250227T0300']]]);
  const text = renderStatus(report, NOW);
  assertFits(text);
  assert.match(text.replace(/\n\s+/g, ' '), /CHANGED BY HAND on the server \(made writable or its Received UUID cleared\), kept but never a parent: home\.20250227T0300/);
});

test('a volume holding a snapshot whose size the server does not know (adopted after a catalog rebuild) has no size in the data, not the others\' sum', () => {
  const volume = { name: 'home', snapshots: 2, rawBytes: 10 * MiB, newest: snapshot('home.20250228T0300', 'u2', '2025-03-01T10:00:00Z'), altered: [] };
  const report = buildStatusReport(input({ volumes: [{ ...volume, sizeUnknown: ['home.20250227T0300'] }, { ...volume, name: 'etc', sizeUnknown: [] }] }));
  assert.deepEqual(report.volumes.map((v) => [v.name, v.rawBytes]), [['etc', 10 * MiB], ['home', null]]);
});

test('a whole stream on the server is 100%, whatever the estimate said; an upload is measured against it', () => {
  const report = buildStatusReport(input({
    transfers: [
      transfer({ state: 'waiting_for_space', rawBytes: 1358 * MiB, rawEstimate: 1359 * MiB }),
      transfer({ id: 'dd'.repeat(16), volume: 'work', state: 'uploading', rawBytes: 1358 * MiB, rawEstimate: 1359 * MiB }),
    ],
  }));
  assert.deepEqual(report.inFlight.map((t) => [t.state, t.percent]), [['waiting_for_space', 100], ['uploading', 99]]);
});
