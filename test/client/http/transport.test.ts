import { test } from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import tls from 'node:tls';
import fs from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { bypassesProxy, createTransport, proxyFor } from '../../../client/http/transport.ts';
import { ServerApi } from '../../../client/http/api.ts';
import { patchBody } from '../../../client/upload/patch-body.ts';
import { createTestCertificates } from '../../fixtures/tls.ts';

const url = (s: string) => new URL(s);

test('NO_PROXY is read as curl reads it', () => {
  const target = url('https://backup.example.net');
  assert.equal(bypassesProxy(target, ''), false);
  assert.equal(bypassesProxy(target, '*'), true);
  assert.equal(bypassesProxy(target, 'backup.example.net'), true);
  assert.equal(bypassesProxy(target, 'example.net'), true, 'a domain covers its subdomains');
  assert.equal(bypassesProxy(target, '.example.net'), true);
  assert.equal(bypassesProxy(target, '*.example.net'), true);
  assert.equal(bypassesProxy(target, 'ample.net'), false, 'whole labels only');
  assert.equal(bypassesProxy(target, 'other.org, example.net'), true, 'comma and space separated');
  assert.equal(bypassesProxy(target, 'other.org example.net'), true);
  assert.equal(bypassesProxy(target, 'example.net:443'), true, 'the default port counts');
  assert.equal(bypassesProxy(target, 'example.net:8443'), false);
  assert.equal(bypassesProxy(url('https://127.0.0.1:8443'), '127.0.0.1:8443'), true);
  assert.equal(bypassesProxy(url('https://[::1]:8443'), '[::1]'), true);
  assert.equal(bypassesProxy(url('https://[::1]:8443'), '::1'), true);
  assert.equal(bypassesProxy(target, 'BACKUP.Example.NET'), true, 'case does not matter');
});

test('HTTPS_PROXY applies to https:// servers only; lower case first; a bare host:port is accepted', () => {
  const target = url('https://backup.example.net');
  assert.equal(proxyFor(target, {}), null);
  assert.equal(proxyFor(target, { HTTPS_PROXY: 'http://proxy:3128' })?.host, 'proxy:3128');
  assert.equal(proxyFor(target, { HTTPS_PROXY: 'http://upper:1', https_proxy: 'http://lower:2' })?.hostname, 'lower');
  assert.equal(proxyFor(target, { HTTPS_PROXY: 'proxy.corp:8080' })?.href, 'http://proxy.corp:8080/');
  assert.equal(proxyFor(target, { HTTPS_PROXY: 'http://proxy:3128', NO_PROXY: 'example.net' }), null);
  assert.equal(proxyFor(target, { HTTPS_PROXY: 'http://proxy:3128', no_proxy: '', NO_PROXY: 'example.net' }), null, 'an empty no_proxy does not hide NO_PROXY');
  assert.equal(proxyFor(url('http://127.0.0.1:8080'), { HTTPS_PROXY: 'http://proxy:3128', HTTP_PROXY: 'http://proxy:3128' }), null);
  assert.throws(() => proxyFor(target, { HTTPS_PROXY: 'socks5://proxy:1080' }), /must be an http:\/\/ proxy/);
});

test('an untrusted certificate is a non-retryable certificate_untrusted error; the CA file makes it trusted', async (t) => {
  const certs = await createTestCertificates(t);
  const server = https.createServer({ cert: await fs.readFile(certs.serverCert), key: await fs.readFile(certs.serverKey) }, (_req, res) => {
    res.statusCode = 418;
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ error: { code: 'nope', message: 'reached', retryable: false } }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const base = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;

  await assert.rejects(new ServerApi({ server: base, transport: createTransport(base, { env: {} }) }).status(), (err: Error & { code: string; retryable: boolean }) => {
    assert.equal(err.code, 'certificate_untrusted');
    assert.equal(err.retryable, false);
    assert.match(err.message, /^the server's certificate is not trusted \(127\.0\.0\.1:\d+\): pass --ca-file/);
    return true;
  });
  const trusted = createTransport(base, { caFile: certs.caCert, env: {} });
  t.after(() => trusted.close());
  // Reaching the server's own answer proves the TLS handshake passed.
  await assert.rejects(new ServerApi({ server: base, transport: trusted }).status(), /reached/);

  // The name is checked too: a certificate for 127.0.0.1 does not do for another address of the same host.
  const byName = base.replace('127.0.0.1', 'localhost');
  const other = createTransport(byName, { caFile: certs.caCert, env: {} });
  t.after(() => other.close());
  await assert.rejects(new ServerApi({ server: byName, transport: other }).status(), /reached/, 'localhost is in the certificate too');
});

test('with --ca-file, new connections reuse one TLS context: the CA bundle is not parsed again per connection', async (t) => {
  const certs = await createTestCertificates(t);
  // Connection: close on every answer, so that every request below needs a connection (and a handshake) of its own,
  // as after a cut, a refused PATCH, or an idle pool.
  const server = https.createServer({ cert: await fs.readFile(certs.serverCert), key: await fs.readFile(certs.serverKey), keepAlive: false }, (req, res) => {
    req.resume();
    req.on('end', () => {
      res.setHeader('connection', 'close');
      res.statusCode = 204;
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const base = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  let connections = 0;
  server.on('secureConnection', () => connections++);

  // Each context built from `ca` parses Node's ~140 bundled roots and the CA file again: about 20 ms of CPU, per
  // connection, on every connection the client opens.
  const original = tls.createSecureContext;
  let contexts = 0;
  tls.createSecureContext = (options) => {
    if (options?.ca !== undefined) contexts++;
    return original(options);
  };
  t.after(() => void (tls.createSecureContext = original));

  const transport = createTransport(base, { caFile: certs.caCert, env: {} });
  t.after(() => transport.close());
  const built = contexts;
  for (let i = 0; i < 3; i++) {
    const api = await transport.fetch(`${base}/v1/status`, { method: 'GET', headers: {} });
    assert.equal(api.status, 204);
    const patch = await transport.httpStack.createRequest('PATCH', `${base}/files/x`).send(patchBody([Buffer.alloc(100_000, i)]));
    assert.equal(patch.getStatus(), 204);
  }
  assert.equal(connections, 6, 'every request came on a new connection');
  assert.ok(built <= 1, `createTransport builds at most one context (${built})`);
  assert.equal(contexts - built, 0, 'no connection built a context of its own from the CA bundle');
});
