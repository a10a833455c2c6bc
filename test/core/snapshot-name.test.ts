import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatStamp, MAX_VOLUME_LENGTH, parseSnapshotName, parseStamp, parseVolumeName, snapshotName } from '../../core/snapshot-name.ts';
import { newestTaken, snapshotDue, type OwnSnapshot } from '../../client/local/take.ts';

test('names are VOLUME.YYYYMMDDTHHMMSSZ in UTC, and parse back to the second', () => {
  const t = new Date('2026-11-25T01:30:07.900Z');
  assert.equal(formatStamp(t), '20261125T013007Z');
  assert.equal(snapshotName('home', t), 'home.20261125T013007Z');
  assert.deepEqual(parseSnapshotName('home.20261125T013007Z'), { prefix: 'home', time: new Date('2026-11-25T01:30:07Z') });
  assert.deepEqual(parseSnapshotName('my.vol.20260101T000000Z')?.prefix, 'my.vol');
  assert.ok(['home.20261125T0130', 'home', 'home.20261125T013007', '20261125T013007Z'].every((n) => parseSnapshotName(n) === null));
  assert.equal(parseStamp('20260231T000000Z'), null, 'no 31 February');
  assert.equal(parseStamp('20260101T240000Z'), null);
  assert.throws(() => snapshotName('../etc', t), /not allowed/);
});

test('a volume name is refused where its snapshots could not be named: at most 255 - 17 characters', () => {
  const t = new Date('2026-11-25T01:30:07Z');
  assert.equal(MAX_VOLUME_LENGTH, 238);
  const longest = 'v'.repeat(238);
  assert.equal(parseVolumeName(longest), longest);
  assert.equal(snapshotName(longest, t).length, 255);
  assert.throws(() => parseVolumeName('v'.repeat(239)), /volume "v+…" is 239 characters long: a volume name has at most 238 characters, so that its snapshots' names \(<volume>\.YYYYMMDDTHHMMSSZ\) fit btrfs's 255/);
  assert.throws(() => parseVolumeName('../etc'), /not allowed/);
});

test('a snapshot is due when the newest is at least snapshotEvery old, when there is none, or with --force', () => {
  const now = new Date('2026-03-01T12:00:00Z');
  const hour = 3_600_000;
  assert.equal(snapshotDue(null, hour, now).due, true);
  assert.equal(snapshotDue(new Date(now.getTime() - hour), hour, now).due, true);
  const notYet = snapshotDue(new Date(now.getTime() - hour + 1000), hour, now);
  assert.equal(notYet.due, false);
  assert.match(notYet.why, /59m old, under snapshotEvery 60m/);
  assert.equal(snapshotDue(new Date(now.getTime() - 1000), hour, now, true).due, true);
  assert.equal(snapshotDue(new Date(now.getTime() - 1000), undefined, now).due, true);
});

test('a snapshot dated in the future does not stop new ones until that date', () => {
  const now = new Date('2026-12-06T00:00:00Z');
  const hour = 3_600_000;
  const future = snapshotDue(new Date('2030-12-01T00:00:00Z'), hour, now);
  assert.equal(future.due, true);
  assert.match(future.why, /after now: is a clock wrong/);
  // The tester's folder: home.20301201T000000Z, made two hours ago, is not the newest; the one of 3 hours ago is...
  const own = (name: string, generation: number, time: string, created: string): OwnSnapshot => ({
    name, path: `/snaps/${name}`, uuid: `uuid-${name}`, localUuid: `uuid-${name}`, origin: 'src', generation, created: new Date(created), time: new Date(time),
  });
  const folder = [own('home.20261205T210000Z', 1, '2026-12-05T21:00:00Z', '2026-12-05T21:00:00Z'), own('home.20301201T000000Z', 2, '2030-12-01T00:00:00Z', '2026-12-05T22:00:00Z')];
  assert.deepEqual(newestTaken(folder, now), new Date('2026-12-05T22:00:00Z'), 'dated by when btrfs made it');
  assert.equal(snapshotDue(newestTaken(folder, now), hour, now).due, true);
  assert.equal(snapshotDue(newestTaken(folder, now), 3 * hour, now).due, false, 'made 2 hours ago');
});
