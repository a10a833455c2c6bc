import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isHostAndPort, parsePublicUrl, publicBase } from '../../server/public-url.ts';
import { ServerConfigSchema, serveSettings } from '../../server/config.ts';

test('publicUrl: an absolute http(s) URL, its path prefix kept without the trailing slash; anything else refused with the reason', () => {
  assert.equal(parsePublicUrl('https://backup.example.org'), 'https://backup.example.org');
  assert.equal(parsePublicUrl('https://backup.example.org/'), 'https://backup.example.org');
  assert.equal(parsePublicUrl('https://Example.org:8443/snapferry/'), 'https://example.org:8443/snapferry');
  assert.equal(parsePublicUrl('http://[::1]:8080/a/b'), 'http://[::1]:8080/a/b');
  for (const [bad, why] of [
    ['backup.example.org', /absolute URL/], ['/snapferry', /absolute URL/], ['ftp://example.org', /scheme is ftp/],
    ['https://u:p@example.org', /credentials/], ['https://example.org/?x=/v1', /query/], ['https://example.org/?', /query/],
    ['https://example.org/#x', /fragment/],
  ] as const) {
    assert.throws(() => parsePublicUrl(bad), why, bad);
  }
  const parsed = ServerConfigSchema.safeParse({ root: '/srv/a', publicUrl: 'https://example.org/p?x=1' });
  assert.equal(parsed.success, false);
  const config = ServerConfigSchema.parse({ root: '/srv/a', tokens: '/t.json', publicUrl: 'https://example.org/p/' });
  assert.equal(config.publicUrl, 'https://example.org/p');
  assert.equal(serveSettings({}, config).options.publicUrl, 'https://example.org/p');
  assert.equal(serveSettings({}, ServerConfigSchema.parse({ root: '/srv/a', tokens: '/t.json' })).options.publicUrl, undefined);
});

test('a host from the request is host[:port] or nothing: no path, query, fragment, userinfo, list or port out of range', () => {
  for (const ok of ['example.org', 'Example.ORG.', 'a-b.example:1', '127.0.0.1:65535', '[::1]', '[2001:db8::1]:443', 'localhost']) {
    assert.ok(isHostAndPort(ok), ok);
  }
  for (const bad of ['', 'evil.example/phish', 'evil.example?x=', 'evil.example#x', 'u@evil.example', 'a.example, b.example', 'evil.example:0',
    'evil.example:65536', 'evil.example:', '-evil.example', 'evil..example', '[::1', 'evil.example\\x', 'evil example']) {
    assert.ok(!isHostAndPort(bad), bad);
  }
});

test('Location base: publicUrl wins over every header; without it, proxy headers only when behind a proxy, checked', () => {
  const req = (headers: Record<string, string>, url = 'https://127.0.0.1:8080/v1/uploads/') => new Request(url, { method: 'POST', headers });
  const hostile = { host: 'own.example', 'x-forwarded-host': 'evil.example/phish?x=', 'x-forwarded-proto': 'http' };
  assert.equal(publicBase(req(hostile), { publicUrl: 'https://backup.example.org/p', behindProxy: true }), 'https://backup.example.org/p');
  assert.throws(() => publicBase(req(hostile), { behindProxy: true }), /not a host\[:port\].*publicUrl/);
  // Served directly: the proxy's headers are no one's; the socket's scheme and the Host count.
  assert.equal(publicBase(req(hostile), { behindProxy: false }), 'https://own.example');
  assert.equal(publicBase(req({ host: 'own.example', 'x-forwarded-host': 'b.example:8443', 'x-forwarded-proto': 'https' }, 'http://x/'), { behindProxy: true }), 'https://b.example:8443');
  assert.equal(publicBase(req({ host: 'own.example', forwarded: 'for=1.2.3.4;host=c.example;proto=https' }, 'http://x/'), { behindProxy: true }), 'https://c.example');
  assert.equal(publicBase(req({ host: 'own.example' }, 'http://x/'), { behindProxy: true }), 'http://own.example');
});
