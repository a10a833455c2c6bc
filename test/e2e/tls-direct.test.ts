/**
 * `snapferry serve --tls-cert --tls-key`: the server terminates TLS itself (no nginx), and the client trusts it only
 * through --ca-file.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { execa } from 'execa';
import { rootOnly } from '../fixtures/btrfs.ts';
import { createTestCertificates } from '../fixtures/tls.ts';
import { push } from '../../client/push/push.ts';
import { EXIT } from '../../client/exit-codes.ts';
import { assertReceived, createPair, recordingReporter } from './harness.ts';
import { unreachableServer } from '../fixtures/local-port.ts';

const BIN = path.resolve(import.meta.dirname, '../../bin/snapferry.js');
const snapferry = (args: string[]) => execa('node', [BIN, ...args], { reject: false, timeout: 60_000 });

test('a server with --tls-cert/--tls-key serves https://, and a client with --ca-file pushes to it', rootOnly, async (t) => {
  const certs = await createTestCertificates(t);
  const pair = await createPair(t, { fillMB: 4 });
  const server = await pair.startServer({ tls: { cert: certs.serverCert, key: certs.serverKey } });
  assert.match(server.url, /^https:\/\/127\.0\.0\.1:\d+$/);
  const s1 = await pair.snapshot('s1');

  const result = await push(
    { server: server.url, volume: 'home', snapshots: [s1], chunkSize: 256 * 1024, caFile: certs.caCert, env: {}, retries: 0 },
    recordingReporter(),
  );
  assert.equal(result.sent[0]!.transfer.state, 'received');
  // Upload URLs are https:// too: a Location with http:// would fail every PATCH and show here as interruptions.
  assert.equal(result.sent[0]!.transfer.interruptions, 0);
  await assertReceived(s1, pair.receivedPath('home', 's1'));

  // The command line: status trusts the CA only with --ca-file, and without it says what to do, at once.
  const ok = await snapferry(['status', '--server', server.url, '--ca-file', certs.caCert, '--json']);
  assert.equal(ok.exitCode, EXIT.ok, ok.stderr);
  assert.deepEqual(JSON.parse(ok.stdout).volumes.map((v: { name: string }) => v.name), ['home']);
  const refused = await snapferry(['status', '--server', server.url]);
  assert.equal(refused.exitCode, EXIT.failed, refused.stderr);
  assert.match(refused.stderr, /the server's certificate is not trusted.*pass --ca-file/);
});

test('a --ca-file that holds no certificate is a usage error, not a TLS failure later', async (t) => {
  const certs = await createTestCertificates(t);
  const res = await snapferry(['status', '--server', await unreachableServer('https'), '--ca-file', certs.serverKey]);
  assert.equal(res.exitCode, EXIT.usage, res.stderr);
  assert.match(res.stderr, /--ca-file .* holds no PEM certificate/);
  const missing = await snapferry(['status', '--server', await unreachableServer('https'), '--ca-file', path.join(certs.dir, 'nope.pem')]);
  assert.equal(missing.exitCode, EXIT.usage, missing.stderr);
  assert.match(missing.stderr, /cannot read --ca-file/);
});
