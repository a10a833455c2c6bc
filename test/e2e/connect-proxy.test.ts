/**
 * HTTPS_PROXY for networks that only let HTTPS out through a proxy: a push tunnels through a real CONNECT proxy
 * (Debian's tinyproxy), both its JSON API calls and its tus upload, and NO_PROXY sends it around the proxy.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { execa } from 'execa';
import { rootOnly } from '../fixtures/btrfs.ts';
import { createTestCertificates } from '../fixtures/tls.ts';
import { startConnectProxy } from '../fixtures/connect-proxy.ts';
import { push } from '../../client/push/push.ts';
import { EXIT } from '../../client/exit-codes.ts';
import { assertReceived, createPair, recordingReporter } from './harness.ts';

const BIN = path.resolve(import.meta.dirname, '../../bin/snapferry.js');

/** The environment of this process without any proxy settings the machine may have. */
function envWithoutProxies(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && !/^(https?|no|all)_proxy$/i.test(k)) env[k] = v;
  }
  return env;
}

test('snapferry push with HTTPS_PROXY tunnels every request through the CONNECT proxy', rootOnly, async (t) => {
  const certs = await createTestCertificates(t);
  const pair = await createPair(t, { fillMB: 4 });
  const server = await pair.startServer({ tls: { cert: certs.serverCert, key: certs.serverKey } });
  const proxy = await startConnectProxy(t);
  const s1 = await pair.snapshot('s1');

  // The command line, with the variable in its real environment, as a systemd unit or a shell would set it.
  const res = await execa('node', [BIN, 'push', '--server', server.url, '--volume', 'home', '--ca-file', certs.caCert, s1], {
    reject: false,
    timeout: 120_000,
    env: { ...envWithoutProxies(), HTTPS_PROXY: proxy.url },
    extendEnv: false,
  });
  assert.equal(res.exitCode, EXIT.ok, res.stderr);
  await assertReceived(s1, pair.receivedPath('home', 's1'));
  const target = new URL(server.url).host;
  const connects = await proxy.connects();
  assert.ok(connects.length >= 1, `the proxy saw no CONNECT:\n${await proxy.log()}`);
  assert.deepEqual([...new Set(connects)], [target], 'every tunnel went to the server');
});

test('NO_PROXY naming the server goes around the proxy; a proxy that is down then does not matter', rootOnly, async (t) => {
  const certs = await createTestCertificates(t);
  const pair = await createPair(t, { fillMB: 2 });
  const server = await pair.startServer({ tls: { cert: certs.serverCert, key: certs.serverKey } });
  const proxy = await startConnectProxy(t);
  const [s1, s2] = [await pair.snapshot('s1'), await pair.snapshot('s2')];
  const base = { server: server.url, volume: 'home', caFile: certs.caCert, chunkSize: 256 * 1024, retries: 0 };

  // Lower case wins, as in curl; a list with spaces and a port-specific entry for another port.
  const port = new URL(server.url).port;
  await push({ ...base, snapshots: [s1], env: { https_proxy: proxy.url, NO_PROXY: 'example.net, 127.0.0.1' } }, recordingReporter());
  assert.deepEqual(await proxy.connects(), [], 'NO_PROXY=127.0.0.1 bypassed the proxy');
  await assertReceived(s1, pair.receivedPath('home', 's1'));

  await proxy.stop();
  await push({ ...base, snapshots: [s2], env: { HTTPS_PROXY: proxy.url, no_proxy: `localhost,127.0.0.1:${port}` } }, recordingReporter());
  await assertReceived(s2, pair.receivedPath('home', 's2'));

  // The same push with the host not exempted must use the proxy, which is now down: the check can fail.
  const s3 = await pair.snapshot('s3');
  await assert.rejects(
    push({ ...base, snapshots: [s3], env: { HTTPS_PROXY: proxy.url, NO_PROXY: `127.0.0.1:${Number(port) + 1}` } }, recordingReporter()),
    (err: Error & { code?: string }) => {
      assert.equal(err.code, 'server_unreachable', err.message);
      return true;
    },
  );
});
