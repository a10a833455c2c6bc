/**
 * GET /metrics after real pushes: Prometheus text format, figures that agree with the JSON API, and the bearer gate
 * (an admin token sees every client's series, a client token only its own).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { rootOnly } from '../fixtures/btrfs.ts';
import { push } from '../../client/push/push.ts';
import { ServerApi } from '../../client/http/api.ts';
import { authHeaders } from '../../client/http/token.ts';
import { aliceBobAdmin, createPair, recordingReporter } from './harness.ts';

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The text exposition format (version 0.0.4), strictly enough that a malformed line fails the test. */
function parseExposition(text: string): { samples: Sample[]; help: Set<string>; types: Map<string, string> } {
  const samples: Sample[] = [];
  const help = new Set<string>();
  const types = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const meta = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/.exec(line);
    if (meta) {
      if (meta[1] === 'HELP') help.add(meta[2]!);
      else types.set(meta[2]!, meta[3]!);
      continue;
    }
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(m, `not a sample line: ${JSON.stringify(line)}`);
    const labels: Record<string, string> = {};
    for (const [, k, v] of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[k!] = v!;
    samples.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return { samples, help, types };
}

function value(samples: Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  return samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
}

test('GET /metrics: Prometheus text after pushes, figures as the API has them, each client sees its own', { ...rootOnly, timeout: 300_000 }, async (t) => {
  const pair = await createPair(t, { fillMB: 2, seed: 'metrics' });
  const { file, alice, bob, admin } = await aliceBobAdmin(t);
  const server = await pair.startServer({ tokensFile: file });
  const [s1, s2, s3] = [await pair.snapshot('s1'), await pair.snapshot('s2'), await pair.snapshot('s3')];

  const pushed = await push({ server: server.url, volume: 'home', snapshots: [s1], headers: authHeaders(alice) }, recordingReporter());
  await push({ server: server.url, volume: 'work', snapshots: [s2], headers: authHeaders(bob) }, recordingReporter());
  // alice also has an upload left unfinished, holding spool.
  const aliceApi = new ServerApi({ server: server.url, headers: authHeaders(alice) });
  const controller = new AbortController();
  const partialRun = push(
    { server: server.url, volume: 'scratch', snapshots: [s3], headers: authHeaders(alice), chunkSize: 64 * 1024, patchBytes: 256 * 1024, limitRate: 512 * 1024, signal: controller.signal },
    recordingReporter(),
  );
  partialRun.catch(() => undefined);
  while (!(await aliceApi.transfers()).transfers.some((x) => x.volume === 'scratch' && x.framesVerified >= 2)) await sleep(100);
  controller.abort();
  await partialRun.catch(() => undefined);
  await sleep(500); // bytes already on the way land

  const scrape = (token: string | null) => fetch(`${server.url}/metrics`, { headers: authHeaders(token) });
  assert.equal((await scrape(null)).status, 401, 'the same bearer gate as every request');

  const res = await scrape(admin);
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('content-type'), 'text/plain; version=0.0.4; charset=utf-8');
  const { samples, help, types } = parseExposition(await res.text());
  for (const s of samples) {
    const family = [...types.keys()].find((f) => s.name === f || s.name.startsWith(`${f}_`));
    assert.ok(family && help.has(family), `${s.name} has # HELP and # TYPE`);
  }
  assert.equal(types.get('snapferry_uploaded_bytes_total'), 'counter');
  assert.equal(types.get('snapferry_snapshots'), 'gauge');

  const transfers = (await aliceApi.transfers()).transfers;
  const received = pushed.sent[0]!.transfer;
  const partial = transfers.find((x) => x.volume === 'scratch')!;
  assert.equal(partial.state, 'uploading');
  assert.equal(value(samples, 'snapferry_snapshots', { client: 'alice', volume: 'home' }), 1);
  assert.equal(value(samples, 'snapferry_snapshots', { client: 'alice', volume: 'scratch' }), 0);
  assert.equal(value(samples, 'snapferry_snapshots', { client: 'bob', volume: 'work' }), 1);
  const snapshot = (await aliceApi.snapshots('home')).snapshots[0]!;
  assert.equal(value(samples, 'snapferry_snapshots_raw_bytes', { client: 'alice', volume: 'home' }), snapshot.rawBytes);
  assert.equal(value(samples, 'snapferry_newest_snapshot_timestamp_seconds', { client: 'alice', volume: 'home' }), Date.parse(snapshot.receivedAt) / 1000);
  assert.equal(value(samples, 'snapferry_transfers', { client: 'alice', state: 'received' }), 1);
  assert.equal(value(samples, 'snapferry_transfers', { client: 'alice', state: 'uploading' }), 1);
  assert.equal(value(samples, 'snapferry_transfers', { client: 'alice', state: 'failed' }), 0, 'zeros are series too');
  assert.equal(value(samples, 'snapferry_uploaded_bytes_total', { client: 'alice' }), received.wireOffset + partial.wireOffset);
  assert.equal(value(samples, 'snapferry_received_bytes_total', { client: 'alice' }), received.rawBytes);
  assert.ok(partial.wireOffset > 0);
  assert.ok(value(samples, 'snapferry_spool_bytes', { client: 'alice' })! >= partial.wireOffset, 'the unfinished upload holds spool');
  assert.equal(value(samples, 'snapferry_spool_bytes', { client: 'bob' }), 0);
  assert.equal(value(samples, 'snapferry_receive_failures_total', { client: 'alice' }), 0);
  assert.ok(value(samples, 'snapferry_interruptions_total', { client: 'alice' })! >= 0);
  assert.ok(value(samples, 'snapferry_free_bytes')! > 0);
  assert.equal(value(samples, 'snapferry_info', { version: (await aliceApi.status()).version }), 1);
  assert.ok(value(samples, 'process_resident_memory_bytes')! > 0, 'process metrics');
  assert.ok(value(samples, 'nodejs_heap_size_used_bytes')! > 0);

  const own = parseExposition(await (await scrape(alice)).text()).samples;
  assert.equal(value(own, 'snapferry_snapshots', { client: 'alice', volume: 'home' }), 1);
  assert.deepEqual(own.filter((s) => s.labels.client !== undefined && s.labels.client !== 'alice'), [], "no other client's series");
  assert.ok(value(own, 'snapferry_free_bytes')! > 0, "the server's own series are everyone's, as in GET /v1/status");
  const bobs = parseExposition(await (await scrape(bob)).text()).samples;
  assert.deepEqual([...new Set(bobs.filter((s) => s.labels.client !== undefined).map((s) => s.labels.client))], ['bob']);
});
