import { test } from 'node:test';
import assert from 'node:assert/strict';
import { describePlan, isoWeekKey, planRetention, type DatedSnapshot } from '../../core/retention.ts';
import { RetentionPolicy, prunes } from '../../core/retention-policy.ts';

const at = (iso: string): DatedSnapshot => ({ name: `s.${iso}`, time: new Date(iso) });
const none = new Map<string, string>();
const kept = (plan: ReturnType<typeof planRetention>) => plan.keep.map((k) => k.name.slice(2));
const deleted = (plan: ReturnType<typeof planRetention>) => plan.delete.map((d) => d.name.slice(2));
const NOW = new Date('2030-01-01T00:00:00Z');

/** Snapshots every `stepHours` from `from` (inclusive) to `to` (exclusive). */
function series(from: string, to: string, stepHours: number): DatedSnapshot[] {
  const out: DatedSnapshot[] = [];
  for (let t = Date.parse(from); t < Date.parse(to); t += stepHours * 3_600_000) out.push(at(new Date(t).toISOString()));
  return out;
}

test('an empty policy keeps everything, and says so', () => {
  const plan = planRetention(series('2026-01-01T00:00:00Z', '2026-01-03T00:00:00Z', 6), {}, none, NOW);
  assert.equal(plan.delete.length, 0);
  assert.equal(plan.keep.length, 8);
  assert.ok(plan.keep.every((k) => k.reasons.some((r) => /no retention policy/.test(r))));
});

test('last keeps the newest N whatever their age; zero counts keep nothing by themselves', () => {
  const snaps = ['2026-01-01T00:00:00.000Z', '2026-01-05T00:00:00.000Z', '2026-02-01T00:00:00.000Z', '2026-03-01T00:00:00.000Z'].map(at);
  const plan = planRetention(snaps, { last: 2, daily: 0, monthly: 0 }, none, NOW);
  assert.deepEqual(kept(plan), ['2026-02-01T00:00:00.000Z', '2026-03-01T00:00:00.000Z']);
  assert.deepEqual(deleted(plan), ['2026-01-01T00:00:00.000Z', '2026-01-05T00:00:00.000Z']);
  assert.deepEqual(plan.keep[0]!.reasons, ['one of the last 2']);
});

test('hourly keeps the first snapshot of each of the newest N hours that have one', () => {
  const snaps = ['2026-05-10T09:59:59.000Z', '2026-05-10T10:15:00.000Z', '2026-05-10T10:45:00.000Z', '2026-05-10T11:05:00.000Z', '2026-05-10T11:55:00.000Z', '2026-05-10T14:00:00.000Z'].map(at);
  const plan = planRetention(snaps, { hourly: 3 }, none, NOW);
  // Hours 10, 11 and 14 (12 and 13 have none and do not count); the first of each.
  assert.deepEqual(kept(plan), ['2026-05-10T10:15:00.000Z', '2026-05-10T11:05:00.000Z', '2026-05-10T14:00:00.000Z']);
  assert.deepEqual(plan.keep.map((k) => k.reasons), [['hourly 2026-05-10T10 (first of the hour)'], ['hourly 2026-05-10T11 (first of the hour)'], ['hourly 2026-05-10T14 (first of the hour)']]);
});

test('daily days are UTC days, across the ends of months of 28, 29, 30 and 31 days', () => {
  const snaps = [
    '2026-02-28T23:30:00.000Z', '2026-03-01T00:30:00.000Z', // 2026: February has 28 days
    '2028-02-28T23:30:00.000Z', '2028-02-29T00:10:00.000Z', '2028-02-29T23:59:59.000Z', '2028-03-01T00:00:00.000Z', // leap year
    '2028-04-30T23:59:59.000Z', '2028-05-01T00:00:00.000Z', '2028-05-31T22:00:00.000Z', '2028-05-31T23:00:00.000Z', '2028-06-01T00:00:00.000Z',
  ].map(at);
  const plan = planRetention(snaps, { daily: 100 }, none, NOW);
  assert.deepEqual(deleted(plan), ['2028-02-29T23:59:59.000Z', '2028-05-31T23:00:00.000Z']);
  assert.ok(plan.keep.some((k) => k.reasons[0] === 'daily 2028-02-29 (first of the day)'));
  assert.equal(plan.keep.length, 9);

  const newest3 = planRetention(snaps, { daily: 3 }, none, NOW);
  assert.deepEqual(kept(newest3), ['2028-05-01T00:00:00.000Z', '2028-05-31T22:00:00.000Z', '2028-06-01T00:00:00.000Z']);
});

test('ISO weeks: Monday to Sunday, and the days around New Year belong to the right year', () => {
  assert.equal(isoWeekKey(new Date('2025-12-28T23:59:59Z')), '2025-W52'); // a Sunday
  assert.equal(isoWeekKey(new Date('2025-12-29T00:00:00Z')), '2026-W01'); // Monday of the week of Thursday 1 January
  assert.equal(isoWeekKey(new Date('2026-01-04T12:00:00Z')), '2026-W01');
  assert.equal(isoWeekKey(new Date('2026-01-05T00:00:00Z')), '2026-W02');
  assert.equal(isoWeekKey(new Date('2021-01-03T12:00:00Z')), '2020-W53'); // 2020 had 53 weeks
  assert.equal(isoWeekKey(new Date('2020-12-28T00:00:00Z')), '2020-W53');
  assert.equal(isoWeekKey(new Date('2021-01-04T00:00:00Z')), '2021-W01');
  assert.equal(isoWeekKey(new Date('2026-12-31T23:00:00Z')), '2026-W53'); // 2026 ends on a Thursday: 53 weeks
});

test('weekly keeps the first snapshot of each ISO week, across a year boundary', () => {
  // Daily at 06:00 from Saturday 2025-12-27 to Monday 2026-01-12.
  const snaps = series('2025-12-27T06:00:00Z', '2026-01-13T00:00:00Z', 24);
  const plan = planRetention(snaps, { weekly: 3 }, none, NOW);
  assert.deepEqual(kept(plan), ['2025-12-29T06:00:00.000Z', '2026-01-05T06:00:00.000Z', '2026-01-12T06:00:00.000Z']);
  assert.deepEqual(plan.keep.map((k) => k.reasons[0]), [
    'weekly 2026-W01 (first of the week)',
    'weekly 2026-W02 (first of the week)',
    'weekly 2026-W03 (first of the week)',
  ]);
  const four = planRetention(snaps, { weekly: 4 }, none, NOW);
  assert.equal(kept(four)[0], '2025-12-27T06:00:00.000Z', 'the Saturday begins 2025-W52 in this series');
});

test('monthly keeps the first weekly snapshot of each month (btrbk), through months of 31, 28, 31 and 30 days', () => {
  // Daily from Thursday 1 January to Thursday 30 April 2026.
  const snaps = series('2026-01-01T03:00:00Z', '2026-05-01T00:00:00Z', 24);
  const plan = planRetention(snaps, { monthly: 4 }, none, NOW);
  // January: its first week's first snapshot is 1 January (the series starts there). February and March begin on a
  // Sunday, so their first weekly is Monday the 2nd; April begins on a Wednesday inside a March week: Monday the 6th.
  assert.deepEqual(kept(plan), ['2026-01-01T03:00:00.000Z', '2026-02-02T03:00:00.000Z', '2026-03-02T03:00:00.000Z', '2026-04-06T03:00:00.000Z']);
  assert.equal(plan.keep[3]!.reasons[0], 'monthly 2026-04 (first weekly snapshot of the month)');
  assert.equal(plan.delete.length, snaps.length - 4);

  const newest2 = planRetention(snaps, { monthly: 2 }, none, NOW);
  assert.deepEqual(kept(newest2), ['2026-03-02T03:00:00.000Z', '2026-04-06T03:00:00.000Z']);
});

test('a month whose weekly snapshots all fall in the month before has no monthly of its own', () => {
  // Only three snapshots: Tuesday 30 June (first of the week of 29 June), Thursday 2 July (same week), and Monday 13 July.
  const snaps = ['2026-06-30T00:00:00.000Z', '2026-07-02T00:00:00.000Z', '2026-07-13T00:00:00.000Z'].map(at);
  const plan = planRetention(snaps, { monthly: 5 }, none, NOW);
  assert.deepEqual(kept(plan), ['2026-06-30T00:00:00.000Z', '2026-07-13T00:00:00.000Z']);
  assert.deepEqual(deleted(plan), ['2026-07-02T00:00:00.000Z']);
});

test('reasons add up; protected snapshots are kept whatever the policy says', () => {
  const snaps = series('2026-03-01T00:00:00Z', '2026-03-04T00:00:00Z', 12); // 6 snapshots, 2 a day
  const protect = new Map([
    [snaps[1]!.name, 'parent of upload abc in progress'],
    [snaps[5]!.name, 'newest snapshot both sides hold'],
  ]);
  const plan = planRetention(snaps, { last: 1, daily: 1 }, protect, NOW);
  assert.deepEqual(kept(plan), ['2026-03-01T12:00:00.000Z', '2026-03-03T00:00:00.000Z', '2026-03-03T12:00:00.000Z']);
  assert.deepEqual(plan.keep.map((k) => k.reasons), [
    ['parent of upload abc in progress'],
    ['daily 2026-03-03 (first of the day)'],
    ['newest snapshot both sides hold', 'one of the last 1'],
  ]);
  assert.deepEqual(describePlan(plan), [
    'delete s.2026-03-01T00:00:00.000Z',
    'keep   s.2026-03-01T12:00:00.000Z  (parent of upload abc in progress)',
    'delete s.2026-03-02T00:00:00.000Z',
    'delete s.2026-03-02T12:00:00.000Z',
    'keep   s.2026-03-03T00:00:00.000Z  (daily 2026-03-03 (first of the day))',
    'keep   s.2026-03-03T12:00:00.000Z  (newest snapshot both sides hold; one of the last 1)',
  ]);
});

test('a snapshot dated after now is kept and takes no part in the counting', () => {
  const snaps = ['2026-01-01T00:00:00.000Z', '2026-01-02T00:00:00.000Z', '2031-01-01T00:00:00.000Z'].map(at);
  const plan = planRetention(snaps, { last: 1 }, none, NOW);
  assert.deepEqual(kept(plan), ['2026-01-02T00:00:00.000Z', '2031-01-01T00:00:00.000Z']);
  assert.match(plan.keep[1]!.reasons[0]!, /after now/);
});

test('a year of hourly snapshots pruned every hour keeps exactly what one pruning at the end keeps', () => {
  const policy: RetentionPolicy = { last: 3, hourly: 24, daily: 7, weekly: 4, monthly: 12 };
  const all = series('2026-01-01T00:20:00Z', '2027-01-10T00:00:00Z', 1);
  let held: DatedSnapshot[] = [];
  for (const s of all) {
    held.push(s);
    const plan = planRetention(held, policy, none, s.time);
    const gone = new Set(plan.delete.map((d) => d.name));
    held = held.filter((h) => !gone.has(h.name));
  }
  const once = planRetention(all, policy, none, all.at(-1)!.time);
  assert.deepEqual(held.map((h) => h.name), once.keep.map((k) => k.name));
  assert.ok(held.length <= 3 + 24 + 7 + 4 + 12, `kept ${held.length}`);
  // The oldest kept is the first weekly of February 2026: the 12 newest months run from February 2026 to January 2027.
  assert.equal(held[0]!.name, 's.2026-02-02T00:20:00.000Z');
  const monthly = once.keep.filter((k) => k.reasons.some((r) => r.startsWith('monthly'))).map((k) => k.name.slice(2, 12));
  assert.deepEqual(monthly, ['2026-02-02', '2026-03-02', '2026-04-06', '2026-05-04', '2026-06-01', '2026-07-06', '2026-08-03', '2026-09-07', '2026-10-05', '2026-11-02', '2026-12-07', '2027-01-04']);
});

// Each test below breaks one rule of the planner; the comment before it names the rule.

test('snapshots may come in any order: the plan is the same, oldest first', () => {
  // Names that sort against time, so an order by name alone shows.
  const snaps: DatedSnapshot[] = [
    { name: 'a', time: new Date('2026-03-03T00:00:00Z') },
    { name: 'c', time: new Date('2026-03-01T00:00:00Z') },
    { name: 'b', time: new Date('2026-03-02T00:00:00Z') },
    { name: 'd', time: new Date('2026-03-01T12:00:00Z') },
  ];
  const plan = planRetention(snaps, { last: 1, daily: 2 }, none, NOW);
  assert.deepEqual(plan.keep.map((k) => k.name), ['b', 'a']);
  assert.deepEqual(plan.keep.map((k) => k.reasons), [['daily 2026-03-02 (first of the day)'], ['one of the last 1', 'daily 2026-03-03 (first of the day)']]);
  assert.deepEqual(plan.delete.map((d) => d.name), ['c', 'd']);
});

test('snapshots of the same instant are ordered by name, whatever order they come in', () => {
  const time = new Date('2026-03-01T10:00:00Z');
  const [x, y] = [{ name: 'x', time }, { name: 'y', time }];
  for (const input of [[x, y], [y, x]]) {
    const plan = planRetention(input, { hourly: 1 }, none, NOW);
    assert.deepEqual(plan.keep.map((k) => k.name), ['x'], 'the first of the hour is the first by name');
    assert.deepEqual(plan.delete.map((d) => d.name), ['y']);
  }
});

test('last: 0 keeps nothing by itself', () => {
  const snaps = series('2026-03-01T00:00:00Z', '2026-03-03T00:00:00Z', 12);
  const plan = planRetention(snaps, { last: 0, daily: 1 }, none, NOW);
  assert.deepEqual(kept(plan), ['2026-03-02T00:00:00.000Z']);
  assert.equal(plan.delete.length, 3);
});

test('a snapshot dated exactly now is counted like any other', () => {
  const snaps = ['2026-01-01T00:00:00.000Z', NOW.toISOString()].map(at);
  const plan = planRetention(snaps, { last: 1 }, none, NOW);
  assert.deepEqual(kept(plan), [NOW.toISOString()]);
  assert.deepEqual(plan.keep[0]!.reasons, ['one of the last 1']);
});

test('a protected name that is not among the snapshots changes nothing', () => {
  const snaps = series('2026-03-01T00:00:00Z', '2026-03-02T00:00:00Z', 12);
  const plan = planRetention(snaps, { last: 1 }, new Map([['gone', 'parent of upload abc']]), NOW);
  assert.deepEqual(kept(plan), ['2026-03-01T12:00:00.000Z']);
  assert.deepEqual(plan.delete.map((d) => d.name), [snaps[0]!.name]);
});

test('a policy whose keys are all unset is empty: it keeps everything', () => {
  const snaps = series('2026-03-01T00:00:00Z', '2026-03-02T00:00:00Z', 12);
  const plan = planRetention(snaps, { last: undefined, daily: undefined }, none, NOW);
  assert.equal(plan.delete.length, 0);
  assert.equal(prunes({ last: undefined }), false);
  assert.equal(prunes({ last: 0 }), true, 'a count of 0 is a policy: keep nothing for that rule');
});

test('the config form of a policy: counts are integers from 0, and only the five keys', () => {
  assert.deepEqual(RetentionPolicy.parse({ last: 0, hourly: 24, daily: 7, weekly: 4, monthly: 12 }), { last: 0, hourly: 24, daily: 7, weekly: 4, monthly: 12 });
  assert.deepEqual(RetentionPolicy.parse({}), {});
  for (const bad of [{ daily: -1 }, { daily: 1.5 }, { daily: '7' }, { yearly: 1 }]) {
    assert.equal(RetentionPolicy.safeParse(bad).success, false, JSON.stringify(bad));
  }
});
