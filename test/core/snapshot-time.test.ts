import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseNameTime } from '../../core/snapshot-name.ts';
import { snapshotTimes } from '../../client/local/taken-at.ts';
import { byTaken, parseTimeMetadata, snapshotDating } from '../../server/snapshot-time.ts';

test("btrbk's name forms and ours parse to their time; the zone-less ones in the zone asked for", () => {
  const utc = (n: string) => parseNameTime(n, 'utc')?.time.toISOString() ?? null;
  assert.equal(utc('data.20261101'), '2026-11-01T00:00:00.000Z', 'short');
  assert.equal(utc('data.20261101T0130'), '2026-11-01T01:30:00.000Z', 'long (btrbk default)');
  assert.equal(utc('data.20261101T0130_2'), '2026-11-01T01:30:00.000Z', 'long with a collision suffix');
  assert.equal(utc('data.20261101T013005'), '2026-11-01T01:30:05.000Z');
  assert.equal(utc('data.20261101T013005+0200'), '2026-10-31T23:30:05.000Z', 'long-iso carries its own zone');
  assert.equal(utc('data.20261101T013005-0130'), '2026-11-01T03:00:05.000Z');
  assert.equal(utc('home.20261125T013007Z'), '2026-11-25T01:30:07.000Z', 'ours');
  assert.equal(parseNameTime('my.vol.20261101T0130', 'utc')?.prefix, 'my.vol');
  assert.equal(parseNameTime('data.20261101T0130', 'local')?.time.getTime(), new Date(2026, 10, 1, 1, 30).getTime());
  // Long-iso carries its zone: read the same whatever the machine's.
  assert.equal(parseNameTime('data.20261101T013005+0200', 'local')?.time.toISOString(), '2026-10-31T23:30:05.000Z');
  for (const n of ['data', 'data.2026110', 'data.20261301', 'data.20260231T0100', 'data.20261101T2460', 'data.20261101T01', '20261101', 'data.20261101T0130Z', 'data.20261101Tabcd']) {
    assert.equal(parseNameTime(n, 'utc'), null, n);
  }
});

test("a snapshot's time: its name's, else snapper's info.xml, else its btrfs creation time; the creation time travels anyway", () => {
  const otime = new Date('2026-12-05T00:40:00Z');
  const snapper = new Date('2026-11-03T10:00:00Z');
  assert.deepEqual(snapshotTimes('data.20261101T0100', otime), { time: new Date(2026, 10, 1, 1, 0), from: 'name', created: otime });
  assert.deepEqual(snapshotTimes('12', otime, snapper), { time: snapper, from: 'info.xml', created: otime });
  assert.deepEqual(snapshotTimes('manual-copy', otime), { time: otime, from: 'creation time', created: otime });
  assert.deepEqual(snapshotTimes('manual-copy', null), { time: null, from: null, created: null });
  // A received snapshot's creation time is the receive (a restore made today): not when it was taken.
  assert.deepEqual(snapshotTimes('manual-copy', otime, null, true), { time: null, from: null, created: otime });
  assert.deepEqual(snapshotTimes('data.20261101T0100', otime, null, true).from, 'name');
  assert.deepEqual(snapshotTimes('12', otime, snapper, true).from, 'info.xml');
});

test("the server dates a snapshot by its client's time, else (catalogued before) its name in UTC, else its arrival", () => {
  const receivedAt = '2026-12-05T00:00:00.000Z';
  assert.deepEqual(snapshotDating({ name: 'data.20261101T0100', receivedAt, takenAt: '2026-10-31T23:00:00.000Z' }), { time: new Date('2026-10-31T23:00:00Z'), from: 'client' });
  assert.deepEqual(snapshotDating({ name: 'data.20261101T0100', receivedAt, takenAt: null }), { time: new Date('2026-11-01T01:00:00Z'), from: 'name' });
  assert.deepEqual(snapshotDating({ name: 'data.20261101T0100', receivedAt }), { time: new Date('2026-11-01T01:00:00Z'), from: 'name' });
  assert.deepEqual(snapshotDating({ name: 's1', receivedAt }), { time: new Date(receivedAt), from: 'arrival' });
  // Arrival order is the opposite of the taken order here: the list goes by when they were taken.
  const list = [
    { name: 'b', receivedAt: '2026-12-05T00:00:00.000Z', takenAt: '2026-11-02T00:00:00.000Z' },
    { name: 'a', receivedAt: '2026-12-05T00:01:00.000Z', takenAt: '2026-11-01T00:00:00.000Z' },
  ];
  assert.deepEqual(list.sort(byTaken).map((s) => s.name), ['a', 'b']);
});

test('upload time metadata: absent is null, a real ISO 8601 UTC time is kept, anything else is refused', () => {
  assert.equal(parseTimeMetadata(undefined, 'takenAt'), null);
  assert.equal(parseTimeMetadata('2026-11-01T01:00:00.000Z', 'takenAt'), '2026-11-01T01:00:00.000Z');
  assert.equal(parseTimeMetadata('2026-11-01T01:00:00Z', 'takenAt'), '2026-11-01T01:00:00.000Z');
  for (const bad of ['yesterday', '2026-11-01', '2026-11-01T01:00:00+02:00', '2026-02-31T00:00:00Z', '2026-11-01T25:00:00Z', '1e12', ' 2026-11-01T01:00:00Z']) {
    assert.throws(() => parseTimeMetadata(bad, 'takenAt'), (err: Error & { code?: string }) => err.code === 'invalid_input' && /takenAt .*not a time in ISO 8601 UTC/.test(err.message), bad);
  }
});

test("snapper's info.xml <date> is UTC to the second; a missing or impossible one is none", async () => {
  const { parseSnapperDate, snapperName } = await import('../../client/local/snapper.ts');
  assert.equal(parseSnapperDate('<snapshot><num>7</num><date>2026-11-01 01:02:03</date></snapshot>')?.toISOString(), '2026-11-01T01:02:03.000Z');
  for (const xml of ['<snapshot><num>7</num></snapshot>', '<date>2026-02-30 00:00:00</date>', '<date>yesterday</date>', '']) assert.equal(parseSnapperDate(xml), null, xml);
  assert.equal(snapperName('/home/.snapshots/12/snapshot'), '12');
  assert.equal(snapperName('/snapshots/home.20261101'), null);
});

test('the server believes no time after now (a day of zones aside): a name or a takenAt of 2030 dates it by its arrival', () => {
  const receivedAt = '2026-12-06T04:00:00.000Z';
  const now = new Date('2026-12-06T05:00:00.000Z');
  assert.deepEqual(snapshotDating({ name: 'odd.20301201T000000Z', receivedAt }, now), { time: new Date(receivedAt), from: 'future' });
  // An older client sent the name's 2030; the name's own time is then no better: arrival.
  assert.deepEqual(snapshotDating({ name: 'odd.20301201T000000Z', receivedAt, takenAt: '2030-12-01T00:00:00.000Z' }, now), { time: new Date(receivedAt), from: 'future' });
  // Within a day after now (a zone-less btrbk name read as UTC), still believed.
  assert.equal(snapshotDating({ name: 'data.20261206T1500', receivedAt }, now).from, 'name');
  assert.equal(snapshotDating({ name: 'x', receivedAt, takenAt: '2026-12-06T20:00:00.000Z' }, now).from, 'client');
});
