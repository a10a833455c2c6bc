// store: in the server config (server/archive/store-config.ts): parsed at the boundary, and the bucket's keys read
// from a file of their own (mode 600) or the environment, never both, never neither, with a code that says which.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { loadServerConfig, retentionFor, serveSettings } from '../../server/config.ts';
import { storeSettings, type StoreConfig } from '../../server/archive/store-config.ts';
import type { SnapferryError } from '../../core/errors.ts';

const EXAMPLE = path.resolve(import.meta.dirname, '../../deploy/archive.example.yaml');
const store: StoreConfig = { endpoint: 'http://127.0.0.1:7480', bucket: 'backups' };

async function credentialsFile(t: { after(fn: () => unknown): void }, mode: number): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'snapferry-store-config-'));
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, 's3.yaml');
  await fs.writeFile(file, 'accessKeyId: AKFILE\nsecretAccessKey: from-the-file\n', { mode });
  await fs.chmod(file, mode);
  return file;
}

const code = (c: string) => (err: unknown) => (err as SnapferryError).code === c;

test('deploy/archive.example.yaml is valid: an archive server, no root, its bucket and credentials file', async () => {
  const c = await loadServerConfig(EXAMPLE);
  assert.equal(c.root, undefined);
  assert.deepEqual({ ...c.store }, {
    endpoint: 'https://s3.eu-central-1.amazonaws.com', bucket: 'office-backups', prefix: 'snapferry', region: 'eu-central-1',
    credentials: '/etc/snapferry/s3-credentials.yaml',
  });
  const settings = serveSettings({}, c);
  assert.equal(settings.store, c.store);
  assert.ok(!('root' in settings.options));
  assert.deepEqual(settings.store !== null ? settings.chains : null, { fullEveryIncrementals: 14, fullEveryDays: 30 });
  // Retention as a btrfs server reads it, and how long ended uploads stay (server/archive/archive-upkeep.ts).
  assert.deepEqual(retentionFor(c, 'laptop', 'home'), { daily: 14, weekly: 8, monthly: 12 });
  assert.equal(settings.store !== null ? settings.keepEndedMs : null, 7 * 86_400_000);
});

test('archive.fullEvery sets the chain rules; absent, the defaults; without store: it is refused', async (t) => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'snapferry-chain-config-'));
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  const write = async (name: string, text: string) => {
    await fs.writeFile(path.join(dir, name), text);
    return path.join(dir, name);
  };
  const storeYaml = 'store:\n  endpoint: http://127.0.0.1:7480\n  bucket: backups\n';
  const chainsOf = async (file: string) => {
    const settings = serveSettings({ auth: false }, await loadServerConfig(file));
    return settings.store !== null ? settings.chains : null;
  };
  assert.deepEqual(await chainsOf(await write('a.yaml', `${storeYaml}archive:\n  fullEvery:\n    incrementals: 3\n`)), { fullEveryIncrementals: 3, fullEveryDays: 30 });
  assert.deepEqual(await chainsOf(await write('b.yaml', `${storeYaml}archive:\n  fullEvery:\n    days: 7\n`)), { fullEveryIncrementals: 14, fullEveryDays: 7 });
  assert.deepEqual(await chainsOf(await write('c.yaml', storeYaml)), { fullEveryIncrementals: 14, fullEveryDays: 30 });
  await assert.rejects(loadServerConfig(await write('d.yaml', `${storeYaml}archive:\n  fullEvery:\n    incrementals: 0\n`)), /incrementals/);
  await assert.rejects(loadServerConfig(await write('e.yaml', 'root: /srv/b\narchive:\n  fullEvery:\n    days: 7\n')), /archive: only with store:/);
});

test('store credentials: from a file (mode 600), or from the environment', async (t) => {
  const file = await credentialsFile(t, 0o600);
  assert.deepEqual((await storeSettings({ ...store, credentials: file }, {})).credentials, { accessKeyId: 'AKFILE', secretAccessKey: 'from-the-file' });
  const fromEnv = await storeSettings(store, { AWS_ACCESS_KEY_ID: 'AKENV', AWS_SECRET_ACCESS_KEY: 'from-env' });
  assert.deepEqual(fromEnv, { endpoint: store.endpoint, bucket: 'backups', prefix: '', region: 'us-east-1', credentials: { accessKeyId: 'AKENV', secretAccessKey: 'from-env' } });
});

test('store credentials: none, both, or a file others may read are refused with a code of their own', async (t) => {
  await assert.rejects(storeSettings(store, {}), code('store_credentials_missing'));
  await assert.rejects(storeSettings(store, { AWS_ACCESS_KEY_ID: 'AK' }), code('store_credentials_missing'));
  const file = await credentialsFile(t, 0o600);
  await assert.rejects(storeSettings({ ...store, credentials: file }, { AWS_ACCESS_KEY_ID: 'AK', AWS_SECRET_ACCESS_KEY: 's' }), code('store_credentials_ambiguous'));
  const open = await credentialsFile(t, 0o644);
  await assert.rejects(storeSettings({ ...store, credentials: open }, {}), (err: SnapferryError) => err.code === 'store_credentials_open' && /chmod 600/.test(err.message));
});

test('store.leaseSeconds: the upload lease in ms when given, the default (lease.ts) when not; out of 3..3600 refused', async () => {
  const env = { AWS_ACCESS_KEY_ID: 'AK', AWS_SECRET_ACCESS_KEY: 'sk' };
  assert.equal((await storeSettings({ ...store, leaseSeconds: 5 }, env)).leaseMs, 5000);
  assert.equal((await storeSettings(store, env)).leaseMs, undefined);
  const { StoreConfigSchema } = await import('../../server/archive/store-config.ts');
  for (const bad of [0, 2, 3601, 1.5]) assert.equal(StoreConfigSchema.safeParse({ ...store, leaseSeconds: bad }).success, false, String(bad));
  assert.equal(StoreConfigSchema.safeParse({ ...store, leaseSeconds: 30 }).success, true);
});
