/**
 * A caller with a valid token sending tus requests that no snapferry client sends: every refusal, @tus/server's own
 * included, is the README's `{"error": {...}}` in JSON with its code in `snapferry-error-code`, and no tus answer
 * invites a browser in (CORS headers).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rootOnly } from '../fixtures/btrfs.ts';
import { ERROR_CODE_HEADER, UPLOADS_PATH } from '../../core/protocol.ts';
import { authHeaders } from '../../client/http/token.ts';
import { SendStreamBuilder, frameStream, randomUuid } from '../fixtures/send-streams.ts';
import { create, encodeMetadata, hostileServer, metadataFor, twoClients, type HostileServer } from './hostile-client.ts';

interface Case {
  what: string;
  method: string;
  /** Under UPLOADS_PATH: '/' for a creation, '/ID' for the upload the test made. */
  at: '/' | '/ID';
  headers: Record<string, string>;
  body?: Buffer;
  status: number;
  code: string;
  /** Whether the same request later can succeed (default false: only a corrected one can). */
  retryable?: boolean;
}

async function serverWithToken(t: Parameters<typeof hostileServer>[0]): Promise<{ h: HostileServer; auth: Record<string, string> }> {
  const clients = await twoClients(t);
  const h = await hostileServer(t, { tokensFile: clients.file });
  return { h, auth: authHeaders(clients.alice) };
}

function assertJsonError(r: { status: number; statusText: string; headers: Headers; text: string }, status: number, code: string, what: string, retryable = false): void {
  const said = `${what}: ${r.status} ${r.headers.get('content-type')} ${r.text}`;
  assert.equal(r.status, status, said);
  assert.equal(r.headers.get(ERROR_CODE_HEADER), code, said);
  assert.match(r.headers.get('content-type') ?? '', /^application\/json\b/, said);
  // A HEAD's answer has no body: its header is all it says.
  if (r.text === '' && what.includes('HEAD')) return;
  const body = JSON.parse(r.text) as { error: { code: string; message: string; retryable: boolean } };
  assert.equal(body.error.code, code, said);
  assert.equal(typeof body.error.message, 'string', said);
  assert.ok(body.error.message.length > 20, `${said}: the message says what to do`);
  assert.equal(body.error.retryable, retryable, `${said}: retryable`);
}

async function send(h: HostileServer, id: string, c: Case) {
  const res = await fetch(`${h.server.url}${UPLOADS_PATH}${c.at === '/' ? '/' : `/${id}`}`, {
    method: c.method, headers: c.headers, ...(c.body ? { body: c.body } : {}),
  });
  return { status: res.status, statusText: res.statusText, headers: res.headers, text: await res.text() };
}

test("@tus/server's own refusals are JSON errors with a snake_case code in snapferry-error-code, 400 for malformed requests, 412 for a missing Tus-Resumable", rootOnly, async (t) => {
  const { h, auth } = await serverWithToken(t);
  const meta = encodeMetadata(metadataFor('v', 'snap', randomUuid()));
  const created = await create(h.server.url, { ...auth, 'Upload-Metadata': meta });
  assert.equal(created.status, 201, created.text);
  const id = created.id!;
  const body = await frameStream(new SendStreamBuilder().subvol('snap', randomUuid()).end().build());
  const tus = { ...auth, 'Tus-Resumable': '1.0.0' };
  const octets = { 'Content-Type': 'application/offset+octet-stream' };
  const cases: Case[] = [
    { what: 'a creation without Tus-Resumable', method: 'POST', at: '/', headers: { ...auth, 'Upload-Defer-Length': '1', 'Upload-Metadata': meta }, status: 412, code: 'tus_version_required' },
    { what: 'a creation of another tus version', method: 'POST', at: '/', headers: { ...auth, 'Tus-Resumable': '0.2.2', 'Upload-Defer-Length': '1', 'Upload-Metadata': meta }, status: 412, code: 'tus_version_required' },
    { what: 'a HEAD without Tus-Resumable', method: 'HEAD', at: '/ID', headers: auth, status: 412, code: 'tus_version_required' },
    { what: 'Upload-Metadata that is not key base64 pairs', method: 'POST', at: '/', headers: { ...tus, 'Upload-Defer-Length': '1', 'Upload-Metadata': 'volume !!!not*base64!!!,snapshot ???' }, status: 400, code: 'invalid_upload_metadata' },
    { what: 'an Upload-Length that is not a number', method: 'POST', at: '/', headers: { ...tus, 'Upload-Length': 'lots', 'Upload-Metadata': meta }, status: 400, code: 'invalid_upload_length' },
    { what: 'a negative Upload-Length', method: 'POST', at: '/', headers: { ...tus, 'Upload-Length': '-5', 'Upload-Metadata': meta }, status: 400, code: 'invalid_upload_length' },
    { what: 'an Upload-Defer-Length other than 1', method: 'POST', at: '/', headers: { ...tus, 'Upload-Defer-Length': '2', 'Upload-Metadata': meta }, status: 400, code: 'invalid_upload_defer_length' },
    { what: 'a creation with neither Upload-Length nor Upload-Defer-Length', method: 'POST', at: '/', headers: { ...tus, 'Upload-Metadata': meta }, status: 400, code: 'upload_length_required' },
    { what: 'an Upload-Offset that is not a number', method: 'PATCH', at: '/ID', headers: { ...tus, ...octets, 'Upload-Offset': 'abc' }, body, status: 400, code: 'invalid_upload_offset' },
    { what: 'an empty Upload-Offset', method: 'PATCH', at: '/ID', headers: { ...tus, ...octets, 'Upload-Offset': '' }, body, status: 400, code: 'invalid_upload_offset' },
    { what: 'a PATCH without Upload-Offset', method: 'PATCH', at: '/ID', headers: { ...tus, ...octets }, body, status: 400, code: 'upload_offset_required' },
    { what: 'a PATCH without Content-Type', method: 'PATCH', at: '/ID', headers: { ...tus, 'Upload-Offset': '0' }, body, status: 400, code: 'invalid_content_type' },
    { what: 'a PATCH of another Content-Type', method: 'PATCH', at: '/ID', headers: { ...tus, 'Upload-Offset': '0', 'Content-Type': 'text/plain' }, body, status: 400, code: 'invalid_content_type' },
    // Our own JSON error, which tus wrote as text/plain.
    { what: 'a PATCH at the wrong offset', method: 'PATCH', at: '/ID', headers: { ...tus, ...octets, 'Upload-Offset': '17' }, body, status: 409, code: 'offset_mismatch', retryable: true },
    { what: 'a method tus does not know', method: 'PUT', at: '/', headers: tus, status: 405, code: 'method_not_allowed' },
  ];
  // Every case is tried before the test fails, so a failure lists all that are wrong.
  const wrong: string[] = [];
  for (const c of cases) {
    try {
      assertJsonError(await send(h, id, c), c.status, c.code, c.what, c.retryable);
    } catch (err) {
      wrong.push((err as Error).message.split('\n')[0]!);
    }
  }
  assert.deepEqual(wrong, []);
  // None of them touched the upload.
  assert.equal((await h.server.service.progress(id)).wireOffset, 0);
});

test('a creation\'s length refused says which fault it was: too large a Upload-Length, or both Upload-Length and Upload-Defer-Length', rootOnly, async (t) => {
  const { h, auth } = await serverWithToken(t);
  const meta = encodeMetadata(metadataFor('v', 'snap', randomUuid()));
  const tus = { ...auth, 'Tus-Resumable': '1.0.0', 'Upload-Metadata': meta };
  const messageOf = async (headers: Record<string, string>) => {
    const r = await send(h, '', { what: 'creation', method: 'POST', at: '/', headers, status: 400, code: 'invalid_upload_length' });
    assertJsonError(r, 400, 'invalid_upload_length', JSON.stringify(headers));
    return (JSON.parse(r.text) as { error: { message: string } }).error.message;
  };
  assert.match(await messageOf({ ...tus, 'Upload-Length': '9223372036854775808' }), /^Upload-Length 9223372036854775808 is too large: an upload holds at most 9007199254740991 bytes/);
  assert.match(await messageOf({ ...tus, 'Upload-Length': 'lots' }), /in plain digits/);
  assert.match(await messageOf({ ...tus, 'Upload-Length': '100', 'Upload-Defer-Length': '1' }), /Upload-Length .* or Upload-Defer-Length: 1, not both/);
});

test('a frame that fails verification is 460 with the reason phrase "Checksum Mismatch" (tus checksum extension), not "460 unknown"', rootOnly, async (t) => {
  const { h, auth } = await serverWithToken(t);
  const uuid = randomUuid();
  const created = await create(h.server.url, { ...auth, 'Upload-Metadata': encodeMetadata(metadataFor('v', 'snap', uuid)) });
  assert.equal(created.status, 201, created.text);
  const framed = await frameStream(new SendStreamBuilder().subvol('snap', uuid).file('f', Buffer.from('a file\n')).end().build());
  // A bit of the first frame's payload (after its 72-byte header) flipped: the frame's SHA-256 no longer matches.
  framed[80] = framed[80]! ^ 0x01;
  const res = await fetch(`${h.server.url}${UPLOADS_PATH}/${created.id}`, {
    method: 'PATCH', headers: { ...auth, 'Tus-Resumable': '1.0.0', 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream' }, body: framed,
  });
  const text = await res.text();
  assert.equal(res.status, 460, text);
  assert.equal(res.statusText, 'Checksum Mismatch');
  assert.equal(res.headers.get(ERROR_CODE_HEADER), 'frame_corrupt', text);
  assert.match(res.headers.get('content-type') ?? '', /^application\/json\b/);
  assert.equal((JSON.parse(text) as { error: { code: string } }).error.code, 'frame_corrupt');
});

test('no tus answer carries CORS headers, even to a request that names an Origin: no browser is meant to reach the server', rootOnly, async (t) => {
  const { h, auth } = await serverWithToken(t);
  const origin = { Origin: 'https://evil.example' };
  const created = await create(h.server.url, { ...auth, ...origin, 'Upload-Metadata': encodeMetadata(metadataFor('v', 'snap', randomUuid())) });
  assert.equal(created.status, 201, created.text);
  const upload = `${h.server.url}${UPLOADS_PATH}/${created.id}`;
  const tus = { ...auth, ...origin, 'Tus-Resumable': '1.0.0' };
  const answers: [string, Response][] = [
    ['the creation', new Response(null, { headers: created.headers })],
    ['OPTIONS on the uploads', await fetch(`${h.server.url}${UPLOADS_PATH}/`, { method: 'OPTIONS', headers: { ...auth, ...origin, 'Access-Control-Request-Method': 'PATCH' } })],
    ['OPTIONS on an upload', await fetch(upload, { method: 'OPTIONS', headers: { ...auth, ...origin } })],
    ['HEAD', await fetch(upload, { method: 'HEAD', headers: tus })],
    ['an empty PATCH', await fetch(upload, { method: 'PATCH', headers: { ...tus, 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream' }, body: Buffer.alloc(0) })],
    ['a refused PATCH', await fetch(upload, { method: 'PATCH', headers: { ...tus, 'Upload-Offset': '5', 'Content-Type': 'application/offset+octet-stream' }, body: Buffer.alloc(1) })],
    ['a 412', await fetch(upload, { method: 'HEAD', headers: { ...auth, ...origin } })],
  ];
  for (const [what, res] of answers) {
    await res.arrayBuffer();
    assert.ok(res.status < 500, `${what}: ${res.status}`);
    const cors = [...res.headers.keys()].filter((k) => k.startsWith('access-control-'));
    assert.deepEqual(cors, [], `${what} (${res.status}) carries ${cors.join(', ')}`);
  }
  // The tus answers themselves still say what a tus client needs.
  const options = answers[1]![1];
  assert.equal(options.status, 204);
  assert.equal(options.headers.get('tus-version'), '1.0.0');
  assert.equal(answers[3]![1].headers.get('upload-offset'), '0');
});

test('an endpoint that does not exist is a JSON not_found with its code in snapferry-error-code, as every other error', rootOnly, async (t) => {
  const { h, auth } = await serverWithToken(t);
  const res = await fetch(`${h.server.url}/v1/no-such-thing`, { headers: auth });
  assertJsonError({ status: res.status, statusText: res.statusText, headers: res.headers, text: await res.text() }, 404, 'not_found', 'GET /v1/no-such-thing');
});

/** A creation-with-upload of `body` for `snap` of volume v as `uuid`: tus's creation that carries the first bytes. */
async function createWithUpload(url: string, auth: Record<string, string>, uuid: string, body: Buffer) {
  const res = await fetch(`${url}${UPLOADS_PATH}`, {
    method: 'POST',
    headers: {
      ...auth, 'Tus-Resumable': '1.0.0', 'Upload-Defer-Length': '1', 'Content-Type': 'application/offset+octet-stream',
      'Upload-Metadata': encodeMetadata(metadataFor('v', 'snap', uuid)),
    },
    body,
  });
  return { status: res.status, location: res.headers.get('location'), text: await res.text() };
}

// A refusal of the creation's first frame ends its upload (no Location: no client can resume or end it). It fails with
// what its client was told, in the listing and in status's counts; it was listed aborted when its frame did not verify.
for (const refusal of [
  { what: 'fails verification', status: 460, code: /^frame_/, spoil: (framed: Buffer) => { framed[80] = framed[80]! ^ 0x01; } },
  { what: 'is another snapshot than the metadata names', status: 422, code: /^stream_metadata_mismatch$/, spoil: null },
]) {
  test(`a creation whose first frame ${refusal.what} (creation-with-upload, ${refusal.status}, no Location) ends failed with that refusal and leaves no upload holding the volume`, rootOnly, async (t) => {
    const { h, auth } = await serverWithToken(t);
    const uuid = randomUuid();
    // The stream's own UUID: the metadata's, or another one for the mismatch.
    const framed = await frameStream(new SendStreamBuilder().subvol('snap', refusal.spoil ? uuid : randomUuid()).file('f', Buffer.from('a file\n')).end().build());
    refusal.spoil?.(framed);
    const res = await createWithUpload(h.server.url, auth, uuid, framed);
    assert.equal(res.status, refusal.status, res.text);
    assert.equal(res.location, null);
    const told = (JSON.parse(res.text) as { error: { code: string; message: string } }).error;
    assert.match(told.code, refusal.code);
    const list = (await (await fetch(`${h.server.url}/v1/transfers`, { headers: auth })).json()) as { transfers: { state: string; error: { code: string; message: string } | null }[] };
    assert.deepEqual(list.transfers.map((x) => [x.state, x.error?.code, x.error?.message]), [['failed', told.code, told.message]], JSON.stringify(list));
    const status = (await (await fetch(`${h.server.url}/v1/status`, { headers: auth })).json()) as { transfers: Record<string, number> };
    assert.deepEqual(status.transfers, { failed: 1 });
    // The volume is free: the same snapshot can begin again.
    const again = await create(h.server.url, { ...auth, 'Upload-Metadata': encodeMetadata(metadataFor('v', 'snap', uuid)) });
    assert.equal(again.status, 201, again.text);
  });
}
