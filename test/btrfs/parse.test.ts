// Parsers on output captured from btrfs-progs 6.2 (kernel 6.18): the formats core/btrfs relies on.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  parseDumpSubvolume,
  parseReadonlyProperty,
  parseReceivedSubvolume,
  parseSubvolumeList,
  parseSubvolumeShow,
  unescapeDumpPath,
} from '../../core/btrfs/parse.ts';
import { mountOf, parseMountinfo } from '../../core/btrfs/mounts.ts';
import { BtrfsCommandError, BtrfsOutputError, formatCommand, tailOf } from '../../core/btrfs/errors.ts';
import { SnapferryError } from '../../core/errors.ts';
import { receiveArgs } from '../../core/btrfs/receive.ts';
import { sendArgs } from '../../core/btrfs/send.ts';

const SHOW_SNAPSHOT = `snaps/home 2024-05-01
\tName: \t\t\thome 2024-05-01
\tUUID: \t\t\t85f89309-8bea-6543-be5b-30f3f7770825
\tParent UUID: \t\tc6b42202-9ea2-974e-857e-587b9e26f937
\tReceived UUID: \t\t-
\tCreation time: \t\t2026-11-25 01:20:24 +0200
\tSubvolume ID: \t\t257
\tGeneration: \t\t7
\tGen at creation: \t7
\tParent ID: \t\t5
\tTop level ID: \t\t5
\tFlags: \t\t\treadonly
\tSend transid: \t\t0
\tSend time: \t\t2026-11-25 01:20:24 +0000
\tReceive transid: \t0
\tReceive time: \t\t-
\tSnapshot(s):
`;

const SHOW_SOURCE = `vol
\tName: \t\t\tvol
\tUUID: \t\t\tc6b42202-9ea2-974e-857e-587b9e26f937
\tParent UUID: \t\t-
\tReceived UUID: \t\t-
\tCreation time: \t\t2026-11-25 01:20:24 +0000
\tSubvolume ID: \t\t256
\tGeneration: \t\t8
\tGen at creation: \t7
\tParent ID: \t\t5
\tTop level ID: \t\t5
\tFlags: \t\t\t-
\tSend transid: \t\t0
\tSend time: \t\t2026-11-25 01:20:24 +0000
\tReceive transid: \t0
\tReceive time: \t\t-
\tSnapshot(s):
\t\t\t\tsnap1
\t\t\t\tsub/snap 2
`;

const SHOW_RECEIVED = `snap1
\tName: \t\t\tsnap1
\tUUID: \t\t\t6a0fedee-d4d3-0645-bb2e-bcfedd2a8399
\tParent UUID: \t\t-
\tReceived UUID: \t\t85f89309-8bea-6543-be5b-30f3f7770825
\tCreation time: \t\t2026-11-25 01:20:24 +0000
\tSubvolume ID: \t\t256
\tGeneration: \t\t7
\tGen at creation: \t7
\tParent ID: \t\t5
\tTop level ID: \t\t5
\tFlags: \t\t\treadonly
\tSend transid: \t\t7
\tSend time: \t\t2026-11-25 01:20:24 +0000
\tReceive transid: \t7
\tReceive time: \t\t2026-11-25 01:20:25 +0000
\tSnapshot(s):
\tQuota group:\t\t0/256
\t  Limit referenced:\t-
`;

test('subvolume show: a read-only snapshot, with a name that has spaces and a time zone offset', () => {
  const info = parseSubvolumeShow(SHOW_SNAPSHOT);
  assert.equal(info.path, 'snaps/home 2024-05-01');
  assert.equal(info.name, 'home 2024-05-01');
  assert.equal(info.uuid, '85f89309-8bea-6543-be5b-30f3f7770825');
  assert.equal(info.parentUuid, 'c6b42202-9ea2-974e-857e-587b9e26f937');
  assert.equal(info.receivedUuid, null);
  assert.equal(info.readonly, true);
  assert.equal(info.subvolumeId, 257);
  assert.equal(info.generation, 7);
  assert.equal(info.genAtCreation, 7);
  assert.equal(info.topLevelId, 5);
  assert.equal(info.creationTime?.toISOString(), '2026-11-24T23:20:24.000Z');
  assert.equal(info.receiveTime, null);
  // Never received: no Send transid to compare an incremental's CLONE_CTRANSID with (server/stream-start.ts).
  assert.equal(info.sendTransid, 0);
  assert.deepEqual(info.snapshots, []);
});

test('subvolume show: a writable source lists its snapshots', () => {
  const info = parseSubvolumeShow(SHOW_SOURCE);
  assert.equal(info.readonly, false);
  assert.equal(info.parentUuid, null);
  assert.deepEqual(info.snapshots, ['snap1', 'sub/snap 2']);
});

test('subvolume show: a received subvolume, with quota lines that are ignored', () => {
  const info = parseSubvolumeShow(SHOW_RECEIVED);
  assert.equal(info.receivedUuid, '85f89309-8bea-6543-be5b-30f3f7770825');
  assert.equal(info.sendTransid, 7);
  assert.equal(info.receiveTransid, 7);
  assert.equal(info.receiveTime?.toISOString(), '2026-11-25T01:20:25.000Z');
  assert.deepEqual(info.snapshots, []);
});

test('subvolume show: missing or malformed fields are BtrfsOutputError, not guesses', () => {
  assert.throws(() => parseSubvolumeShow(''), BtrfsOutputError);
  assert.throws(() => parseSubvolumeShow(SHOW_SOURCE.replace(/\tUUID:.*\n/, '')), /no "UUID:" line/);
  assert.throws(() => parseSubvolumeShow(SHOW_SOURCE.replace('256', '25x')), /Subvolume ID is not a whole number/);
  assert.throws(() => parseSubvolumeShow(SHOW_SOURCE.replace('Parent UUID: \t\t-', 'Parent UUID: \t\tnope')), /not a UUID/);
  assert.throws(() => parseSubvolumeShow(SHOW_SOURCE.replace('2026-11-25 01:20:24 +0000', 'yesterday')), /not a time/);
  const err = (() => {
    try {
      parseSubvolumeShow('x\n');
    } catch (e) {
      return e;
    }
  })();
  assert.ok(err instanceof SnapferryError);
  assert.equal(err.code, 'btrfs_unexpected_output');
});

const LIST = `ID 256 gen 8 top level 5 parent_uuid -                                    received_uuid -                                    uuid c6b42202-9ea2-974e-857e-587b9e26f937 path vol
ID 257 gen 7 top level 5 parent_uuid c6b42202-9ea2-974e-857e-587b9e26f937 received_uuid -                                    uuid 85f89309-8bea-6543-be5b-30f3f7770825 path snap1
ID 258 gen 8 top level 256 parent_uuid c6b42202-9ea2-974e-857e-587b9e26f937 received_uuid 0b23bd16-35bb-b648-bcb9-b2c4bc346d19 uuid 6a0fedee-d4d3-0645-bb2e-bcfedd2a8399 path vol/sub dir/snap 2
`;

test('subvolume list -u -q -R: ids, uuids, and paths with spaces', () => {
  const entries = parseSubvolumeList(LIST);
  assert.equal(entries.length, 3);
  assert.deepEqual(entries[0], {
    id: 256,
    gen: 8,
    topLevel: 5,
    path: 'vol',
    uuid: 'c6b42202-9ea2-974e-857e-587b9e26f937',
    parentUuid: null,
    receivedUuid: null,
  });
  assert.equal(entries[1]?.parentUuid, 'c6b42202-9ea2-974e-857e-587b9e26f937');
  assert.equal(entries[2]?.topLevel, 256);
  assert.equal(entries[2]?.receivedUuid, '0b23bd16-35bb-b648-bcb9-b2c4bc346d19');
  assert.equal(entries[2]?.path, 'vol/sub dir/snap 2');
  assert.deepEqual(parseSubvolumeList(''), []);
  assert.throws(() => parseSubvolumeList('ID 256 gen 8 top level 5 path vol\n'), /unexpected line/);
});

test('subvolume list: a name holding newlines (any user may make one) stays one entry, its path whole', () => {
  const [vol, snap1] = LIST.split('\n');
  const odd = 'ID 259 gen 9 top level 5 parent_uuid -                                    received_uuid -                                    uuid 0e3c8d6a-1f32-4a7c-9b55-6f0d2a1c4e77 path home/user/x\ny\n\nz';
  const entries = parseSubvolumeList(`${vol}\n${odd}\n${snap1}\n`);
  assert.deepEqual(entries.map((e) => e.path), ['vol', 'home/user/x\ny\n\nz', 'snap1']);
  assert.equal(entries[1]?.id, 259);
  assert.equal(entries[2]?.uuid, '85f89309-8bea-6543-be5b-30f3f7770825');
  // A name ending in a newline: its last line is empty, and the output's own last newline is not part of it.
  assert.deepEqual(parseSubvolumeList(`${vol}\n${snap1}\n\n`).map((e) => e.path), ['vol', 'snap1\n']);
});

test('property get ro', () => {
  assert.equal(parseReadonlyProperty('ro=true\n'), true);
  assert.equal(parseReadonlyProperty('ro=false\n'), false);
  assert.throws(() => parseReadonlyProperty(''), BtrfsOutputError);
});

test('receive output names the subvolume it made; the last one wins', () => {
  assert.equal(parseReceivedSubvolume('At subvol snap1\n'), 'snap1');
  assert.equal(parseReceivedSubvolume('At snapshot home 2024-05-02\n'), 'home 2024-05-02');
  assert.equal(parseReceivedSubvolume('At subvol a\nAt snapshot b\nERROR: x\n'), 'b');
  assert.equal(parseReceivedSubvolume('ERROR: unexpected header\n'), null);
});

test('receive --dump: the first command names the subvolume, unescaping what dump escaped', () => {
  assert.equal(parseDumpSubvolume('subvol          ./snap1                         uuid=85f89309-8bea-6543-be5b-30f3f7770825 transid=7\nchown ./snap1/ gid=0 uid=0\n'), 'snap1');
  assert.equal(
    parseDumpSubvolume('snapshot        ./snap\\ 2 uuid=85f89309-8bea-6543-be5b-30f3f7770825 transid=9 parent_uuid=x parent_transid=7\n'),
    'snap 2',
  );
  assert.equal(parseDumpSubvolume('mkfile ./x\n'), null);
  assert.equal(unescapeDumpPath('a\\ b\\tc\\\\d\\303\\251'), 'a b\tc\\dé');
});

test('mountinfo: octal escapes, and the longest mount point wins', () => {
  const text = [
    '26 1 254:0 / / rw,relatime - ext4 /dev/vda rw',
    '42 26 0:38 / /tmp/snap\\040ferry/m rw,relatime - btrfs /dev/loop0 rw,subvolid=5,subvol=/',
    '44 26 0:38 /vol /tmp/mv rw,relatime shared:5 - btrfs /dev/loop0 rw,subvolid=256,subvol=/vol',
    '',
  ].join('\n');
  const mounts = parseMountinfo(text);
  assert.equal(mounts.length, 3);
  assert.deepEqual(mounts[1], { mountPoint: '/tmp/snap ferry/m', root: '/', fsType: 'btrfs', source: '/dev/loop0' });
  assert.equal(mounts[2]?.root, '/vol');
  assert.equal(mountOf(mounts, '/tmp/snap ferry/m/a/b')?.mountPoint, '/tmp/snap ferry/m');
  assert.equal(mountOf(mounts, '/tmp/snap ferry/mm')?.mountPoint, '/');
  assert.equal(mountOf(mounts, '/tmp/mv')?.root, '/vol');
});

test('argv: options before "--", the path after it, nothing through a shell', () => {
  assert.deepEqual(sendArgs('/s/b'), ['send', '--', '/s/b']);
  assert.deepEqual(sendArgs('-odd', { parent: '/s/a', cloneSources: ['/s/c', '/s/d'], proto: 2, compressedData: true }), [
    'send', '-p', '/s/a', '-c', '/s/c', '-c', '/s/d', '--proto', '2', '--compressed-data', '--', '-odd',
  ]);
  assert.deepEqual(receiveArgs('/v'), ['receive', '-e', '--', '/v']);
  assert.deepEqual(receiveArgs('/v', { chroot: true, maxErrors: 0, endOnEndCommand: false }), ['receive', '--chroot', '-E', '0', '--', '/v']);
  assert.deepEqual(receiveArgs('/v', { dumpOnly: true }), ['receive', '--dump']);
});

test('BtrfsCommandError says what ran, how it ended, and the tail of stderr', () => {
  const stderr = Array.from({ length: 30 }, (_, i) => `line ${i}`).join('\n') + '\n';
  const err = new BtrfsCommandError({ command: ['btrfs', 'send', '/s/my snap'], exitCode: 1, signal: null, stderrTail: tailOf(stderr) });
  assert.ok(err instanceof SnapferryError);
  assert.equal(err.code, 'btrfs_failed');
  assert.equal(err.retryable, false);
  assert.match(err.message, /^btrfs send '\/s\/my snap' exited with code 1:\nline 10\n/);
  assert.match(err.message, /line 29$/);
  assert.doesNotMatch(err.message, /line 9\n/);
  assert.equal(err.stderrTail.split('\n').length, 20);
  assert.deepEqual(err.toJSON().details.command, ['btrfs', 'send', '/s/my snap']);

  const killed = new BtrfsCommandError({ command: ['btrfs', 'receive'], exitCode: null, signal: 'SIGKILL', stderrTail: '' });
  assert.equal(killed.message, 'btrfs receive was killed by SIGKILL');
  const cancelled = new BtrfsCommandError({ command: ['btrfs'], exitCode: null, signal: 'SIGTERM', stderrTail: '', cancelled: true });
  assert.equal(cancelled.code, 'btrfs_cancelled');
  assert.ok(tailOf('x'.repeat(5000)).length <= 2049);
  assert.equal(formatCommand(['btrfs', "it's"]), "btrfs 'it'\\''s'");
});
