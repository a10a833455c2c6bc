/**
 * An archive's chains (server/archive/chains.ts), without S3 or root: when a chain may take another incremental,
 * what a restore fetches, and that retention deletes only whole chains that no kept snapshot needs. Properties over
 * random histories (fast-check) check the promise that matters most: after retention, every kept snapshot can still
 * be restored from what is left.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { SnapferryError } from '../../core/errors.ts';
import { statusOf } from '../../server/http-errors.ts';
import { chainsOf, mayExtend, planArchiveRetention, restorePath, type ArchivedStream, type ChainRules } from '../../server/archive/chains.ts';

const DAY = 86_400_000;
const T0 = Date.parse('2026-11-01T00:00:00Z');
const RULES: ChainRules = { fullEveryIncrementals: 3, fullEveryDays: 10 };

const stream = (n: number, parent: number | null, day = n): ArchivedStream => ({
  uuid: `u${n}`,
  name: `home.${n}`,
  parentUuid: parent === null ? null : `u${parent}`,
  time: new Date(T0 + day * DAY),
  storedAt: new Date(T0 + day * DAY + 60_000),
});

test('a chain takes incrementals up to fullEvery.incrementals, then asks for a full', () => {
  const streams = [stream(0, null), stream(1, 0), stream(2, 1)];
  const now = new Date(T0 + 3 * DAY);
  assert.deepEqual(mayExtend(streams, 'u2', now, RULES), { ok: true }, 'the third incremental fits');
  const full = mayExtend([...streams, stream(3, 2)], 'u3', now, RULES);
  assert.equal(full.ok, false);
  assert.match(!full.ok ? full.reason : '', /home\.0 holds 3 incrementals, the most allowed \(fullEvery\.incrementals: 3\)/);
  // Branching from an older member counts the chain, not the path: a chain that may branch for ever never closes.
  const branch = mayExtend([...streams, stream(3, 2)], 'u1', now, RULES);
  assert.equal(branch.ok, false);
  assert.match(!branch.ok ? branch.reason : '', /home\.0 holds 3 incrementals/);
  // Another chain is counted on its own.
  assert.deepEqual(mayExtend([...streams, stream(3, 2), stream(4, null)], 'u4', now, RULES), { ok: true });
});

test('with fullEvery.incrementals 1, a third snapshot starts a new chain instead of branching the first', () => {
  const one: ChainRules = { fullEveryIncrementals: 1, fullEveryDays: 30 };
  const streams = [stream(0, null), stream(1, 0)];
  const now = new Date(T0 + 2 * DAY);
  // The parent the planner would fall back to, the full itself, is refused too: the chain is full.
  assert.equal(mayExtend(streams, 'u0', now, one).ok, false);
  assert.equal(mayExtend(streams, 'u1', now, one).ok, false);
  assert.deepEqual(mayExtend([stream(0, null)], 'u0', now, one), { ok: true });
});

test('property: no chain grows past fullEvery.incrementals when every incremental asks first', () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 5 }), fc.array(fc.nat(), { minLength: 1, maxLength: 30 }), (n, picks) => {
      const rules: ChainRules = { fullEveryIncrementals: n, fullEveryDays: 1000 };
      const streams: ArchivedStream[] = [stream(0, null)];
      for (const [i, pick] of picks.entries()) {
        const parent = streams[pick % streams.length]!;
        const ok = mayExtend(streams, parent.uuid, new Date(T0), rules).ok;
        streams.push(stream(i + 1, ok ? Number(parent.uuid.slice(1)) : null));
      }
      for (const c of chainsOf(streams).chains) assert.ok(c.members.length - 1 <= n, `${c.full.name} holds ${c.members.length - 1} > ${n}`);
    }),
    { numRuns: 300 },
  );
});

test('a chain whose full is older than fullEvery.days takes no incremental', () => {
  const streams = [stream(0, null), stream(1, 0)];
  assert.deepEqual(mayExtend(streams, 'u1', new Date(T0 + 9 * DAY), RULES), { ok: true });
  const old = mayExtend(streams, 'u1', new Date(T0 + 10 * DAY + 120_000), RULES);
  assert.equal(old.ok, false);
  assert.match(!old.ok ? old.reason : '', /10 days old, past fullEvery\.days \(10\)/);
});

test('a restore fetches the path from the full to the snapshot, and names what a broken chain lacks', () => {
  const streams = [stream(0, null), stream(1, 0), stream(2, 1), stream(3, 1), stream(4, null, 4)];
  assert.deepEqual(restorePath(streams, 'u3').map((s) => s.name), ['home.0', 'home.1', 'home.3']);
  assert.deepEqual(restorePath(streams, 'u4').map((s) => s.name), ['home.4']);

  const broken = streams.filter((s) => s.uuid !== 'u1');
  const err = (() => {
    try {
      restorePath(broken, 'u2');
    } catch (e) {
      return e;
    }
    return null;
  })();
  assert.ok(err instanceof SnapferryError);
  assert.equal(err.code, 'chain_broken');
  assert.equal(statusOf(err), 409);
  assert.match(err.message, /lacks u1, which the restore of home\.2 needs/);
  assert.throws(() => restorePath(streams, 'u9'), (e: unknown) => e instanceof SnapferryError && e.code === 'not_found');
  assert.deepEqual(chainsOf(broken).broken.map((s) => s.name), ['home.2', 'home.3']);
});

test('a catalog edited into a loop is refused, not walked for ever', () => {
  const a = { ...stream(1, 2) };
  const b = { ...stream(2, 1) };
  assert.throws(() => restorePath([a, b], 'u1'), /loops back on itself/);
});

test('retention deletes a chain only when it keeps none of its snapshots', () => {
  // Two chains: 0..3 (days 0-3) and 4..6 (days 4-6). Keep the last 2: both in the second chain.
  const streams = [stream(0, null), stream(1, 0), stream(2, 1), stream(3, 2), stream(4, null), stream(5, 4), stream(6, 5)];
  const plan = planArchiveRetention(streams, { last: 2 }, new Date(T0 + 7 * DAY));
  assert.deepEqual(plan.deleteChains.map((c) => c.full.name), ['home.0']);
  assert.deepEqual(plan.deleteChains[0]!.members.map((m) => m.name), ['home.0', 'home.1', 'home.2', 'home.3']);
  assert.deepEqual(plan.keptForChain, [{ name: 'home.4', chain: 'home.4' }]);

  // Keep the last 4: one snapshot of the first chain is kept, so all of it stays.
  const wider = planArchiveRetention(streams, { last: 4 }, new Date(T0 + 7 * DAY));
  assert.deepEqual(wider.deleteChains, []);
  // An empty policy keeps everything.
  assert.deepEqual(planArchiveRetention(streams, {}, new Date(T0 + 7 * DAY)).deleteChains, []);
});

test('retention leaves a broken stream to an operator', () => {
  const streams = [stream(0, null), stream(2, 1)];
  const plan = planArchiveRetention(streams, { last: 0, daily: 0 }, new Date(T0 + 7 * DAY));
  assert.deepEqual(plan.deleteChains.map((c) => c.full.name), ['home.0']);
  assert.ok(plan.plan.keep.some((k) => k.name === 'home.2' && k.reasons.some((r) => /parent is missing/.test(r))));
});

/** A random history: each stream a full or an incremental on some earlier stream, taken a day apart. */
const history = fc
  .array(fc.option(fc.nat(), { freq: 3 }), { minLength: 1, maxLength: 40 })
  .map((parents) => parents.map((p, i) => stream(i, p === null || i === 0 ? null : p % i)));

test('property: after retention, every kept snapshot restores from what is left, and only unkept ones go', () => {
  const policy = fc.record({ last: fc.option(fc.integer({ min: 0, max: 5 }), { nil: undefined }), daily: fc.option(fc.integer({ min: 0, max: 5 }), { nil: undefined }) });
  fc.assert(
    fc.property(history, policy, fc.integer({ min: 0, max: 60 }), (streams, p, nowDay) => {
      const plan = planArchiveRetention(streams, p, new Date(T0 + nowDay * DAY));
      const gone = new Set(plan.deleteChains.flatMap((c) => c.members.map((m) => m.uuid)));
      const left = streams.filter((s) => !gone.has(s.uuid));
      const kept = new Set(plan.plan.keep.map((k) => k.name));
      for (const s of streams) {
        if (kept.has(s.name)) {
          assert.ok(!gone.has(s.uuid), `${s.name} is kept but deleted`);
          assert.equal(restorePath(left, s.uuid).at(-1)?.uuid, s.uuid);
        }
      }
      for (const chain of plan.deleteChains) for (const m of chain.members) assert.ok(!kept.has(m.name));
    }),
    { numRuns: 300 },
  );
});

test('property: chainsOf places every stream once, each after its parent', () => {
  fc.assert(
    fc.property(history, (streams) => {
      const { chains, broken } = chainsOf(streams);
      const placed = [...chains.flatMap((c) => c.members), ...broken].map((s) => s.uuid).sort();
      assert.deepEqual(placed, streams.map((s) => s.uuid).sort());
      for (const c of chains) {
        const seen = new Set<string>();
        for (const m of c.members) {
          if (m.parentUuid !== null) assert.ok(seen.has(m.parentUuid), `${m.name} before its parent`);
          seen.add(m.uuid);
        }
        for (const m of c.members) assert.equal(restorePath(streams, m.uuid)[0]!.uuid, c.full.uuid);
      }
    }),
    { numRuns: 300 },
  );
});
