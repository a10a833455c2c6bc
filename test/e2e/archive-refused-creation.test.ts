/**
 * An archive upload the server ended for refusing its first frame, on a real RGW over real sockets: its transfer is
 * `failed` with the refusal's code and message, and GET /v1/status and /metrics count it so, by that code. Before, a
 * creation-with-upload whose frame did not verify (460, no Location) was ended as an abort (listed aborted), and a
 * stream refused for good at frame 0 was listed failed while status and /metrics counted it aborted.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { META, UPLOADS_PATH, WIRE_FORMAT } from '../../core/protocol.ts';
import { generateKeyFile } from '../../core/crypto/key-file.ts';
import { streamIdentity } from '../../core/wire/index.ts';
import { SendStreamBuilder, frameStream, randomUuid } from '../fixtures/send-streams.ts';
import { archiveServer, sharedS3 } from '../archive/store-fixture.ts';

const s3 = sharedS3();
const CHUNK = 65536;

interface Told {
  status: number;
  location: string | null;
  error: { code: string; message: string; retryable: boolean };
}

/** A tus creation of `snapshot` (on `parentUuid`, if any) in volume v; with `body`, a creation-with-upload. */
async function create(url: string, snapshot: string, uuid: string, parentUuid: string | null, body?: Buffer): Promise<Response> {
  const meta: Record<string, string> = {
    [META.volume]: 'v', [META.snapshot]: snapshot, [META.uuid]: uuid, [META.format]: WIRE_FORMAT, [META.chunkSize]: String(CHUNK),
    ...(parentUuid ? { [META.parentUuid]: parentUuid } : {}),
  };
  return fetch(`${url}${UPLOADS_PATH}`, {
    method: 'POST',
    headers: {
      'Tus-Resumable': '1.0.0', 'Upload-Defer-Length': '1',
      'Upload-Metadata': Object.entries(meta).map(([k, v]) => `${k} ${Buffer.from(v).toString('base64')}`).join(','),
      ...(body ? { 'Content-Type': 'application/offset+octet-stream' } : {}),
    },
    ...(body ? { body } : {}),
  });
}

function patch(url: string, location: string, body: Buffer): Promise<Response> {
  return fetch(new URL(location, url), {
    method: 'PATCH',
    headers: { 'Tus-Resumable': '1.0.0', 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream' },
    body,
  });
}

async function told(res: Response): Promise<Told> {
  const text = await res.text();
  const body = JSON.parse(text) as { error?: Told['error'] };
  assert.ok(body.error, `${res.status}: ${text}`);
  return { status: res.status, location: res.headers.get('location'), error: body.error };
}

async function listed(url: string): Promise<{ id: string; snapshot: string; state: string; error: { code: string; message: string } | null }[]> {
  return ((await (await fetch(`${url}/v1/transfers`)).json()) as { transfers: Awaited<ReturnType<typeof listed>> }).transfers;
}

async function statusCounts(url: string): Promise<Record<string, number>> {
  return ((await (await fetch(`${url}/v1/status`)).json()) as { transfers: Record<string, number> }).transfers;
}

/** The series of /metrics named `name` for client "default", by the value of `label`, those that are not 0. */
async function metricsBy(url: string, name: string, label: string): Promise<Record<string, number>> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const found: Record<string, number> = {};
  for (const m of text.matchAll(new RegExp(`^${name}\\{client="default",${label}="([^"]+)"\\} (\\d+)$`, 'gm'))) if (m[2] !== '0') found[m[1]!] = Number(m[2]);
  return found;
}

/** The listing, status and /metrics all say `failed`, with the codes of `refusals`, and nothing aborted. */
async function assertCountedFailed(url: string, refusals: readonly Told['error'][]): Promise<void> {
  const ended = (await listed(url)).filter((x) => x.state !== 'received');
  assert.deepEqual(ended.map((x) => [x.state, x.error?.code, x.error?.message]), refusals.map((r) => ['failed', r.code, r.message]), 'listed failed, with the refusal');
  const byCode: Record<string, number> = {};
  for (const r of refusals) byCode[r.code] = (byCode[r.code] ?? 0) + 1;
  const { received: _r, ...counts } = await statusCounts(url);
  assert.deepEqual(counts, { failed: refusals.length }, 'GET /v1/status');
  const { received: _m, ...states } = await metricsBy(url, 'snapferry_transfers', 'state');
  assert.deepEqual(states, { failed: refusals.length }, 'snapferry_transfers');
  assert.deepEqual(await metricsBy(url, 'snapferry_failed_transfers', 'code'), byCode, 'snapferry_failed_transfers');
}

test('a creation-with-upload whose first frame does not verify (460, no Location) ends failed with that refusal, not aborted; status and /metrics count it so', async (t) => {
  const server = await archiveServer(t, await s3.bucket(), 'refused');
  const uuid = randomUuid();
  const framed = await frameStream(new SendStreamBuilder().subvol('s1', uuid).file('f', Buffer.from('a file\n')).end().build(), CHUNK);
  framed[80] = framed[80]! ^ 0x01;
  const refused = await told(await create(server.url, 's1', uuid, null, framed));
  assert.equal(refused.status, 460, JSON.stringify(refused));
  assert.equal(refused.location, null);
  assert.match(refused.error.code, /^frame_/);
  await assertCountedFailed(server.url, [refused.error]);
  // The client's next creation of the same snapshot is admitted: the refused one holds no open-upload slot.
  assert.equal((await create(server.url, 's1', uuid, null)).status, 201);
});

async function sealKey(t: TestContext) {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'snapferry-archive-refused-'));
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  return generateKeyFile(path.join(dir, 'archive.key'));
}

test('a stream refused for good at frame 0 (a sealed incremental on a plain parent: sealing_mismatch), in a creation-with-upload and in a PATCH, is listed failed and counted failed by status and /metrics, with its code', async (t) => {
  const server = await archiveServer(t, await s3.bucket(), 'refused');
  const key = await sealKey(t);
  const u1 = randomUuid();
  const created = await create(server.url, 's1', u1, null);
  assert.equal(created.status, 201);
  const stored = await patch(server.url, created.headers.get('location')!, await frameStream(new SendStreamBuilder().subvol('s1', u1).file('f', Buffer.from('one\n')).end().build(), CHUNK));
  assert.equal(stored.status, 204, await stored.text());

  const sealedOn = async (u: string) => frameStream(new SendStreamBuilder().snapshot('s2', u, u1).end().build(), CHUNK, undefined, { key, stream: streamIdentity(u, u1) });
  const u2 = randomUuid();
  const withCreation = await told(await create(server.url, 's2', u2, u1, await sealedOn(u2)));
  assert.deepEqual([withCreation.status, withCreation.location, withCreation.error.code], [409, null, 'sealing_mismatch']);

  const u3 = randomUuid();
  const bare = await create(server.url, 's2', u3, u1);
  assert.equal(bare.status, 201);
  const inPatch = await told(await patch(server.url, bare.headers.get('location')!, await sealedOn(u3)));
  assert.deepEqual([inPatch.status, inPatch.error.code], [409, 'sealing_mismatch']);
  await assertCountedFailed(server.url, [withCreation.error, inPatch.error]);
});
