/**
 * `privilegedFiles: refuse` against a real server and a real `btrfs receive` (issue 17, item 2). An attacker got a
 * setuid-root file, device nodes and file capabilities through it: a MODE above 2^53 read as "absent" and skipped
 * the check, while btrfs receive applies its low 32 bits; an xattr name `security.capability\0x` was not the
 * capability xattr to the check, while btrfs receive cuts it at the NUL. Each is pushed here and must be refused
 * with nothing left behind; the same shapes with harmless bits are received, to show that receive does apply such
 * MODEs (the stream reaches it) and that the refusals come from the rules.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { rootOnly } from '../fixtures/btrfs.ts';
import { SendStreamBuilder, randomUuid } from '../fixtures/send-streams.ts';
import { SendAttr, SendCmd } from '../../core/wire/sendstream-format.ts';
import { tlv, u64 } from '../wire/sendstream-builder.ts';
import { hostileServer, listTree, metadataFor, settled, uploadStream, writtenOutside, type HostileServer } from './hostile-client.ts';

const HIGH = 1n << 60n;
const S_IFCHR = 0o020000n;
const S_IFBLK = 0o060000n;
const S_IFIFO = 0o010000n;
const data = Buffer.from('#!/bin/sh\nid\n');
/** A valid vfs_cap_data (revision 2, effective) granting CAP_SETUID: what `setcap cap_setuid=ep` writes. */
const CAP_SETUID = Buffer.from(new Uint32Array([0x02000001, 1 << 7, 0, 0, 0]).buffer);

/** Uploads `raw` for `volume`, waits for its receive; returns the transfer's final state and error code. */
async function push(h: HostileServer, volume: string, raw: Buffer, uuid: string) {
  const before = await listTree(h.mount);
  const { id, patched } = await uploadStream(h.server.url, metadataFor(volume, 'snap', uuid), raw);
  assert.equal(patched.status, 204, patched.text);
  const t = await settled(h, id);
  assert.deepEqual(await writtenOutside(h.mount, before, volume), [], 'nothing is written outside the volume folder');
  return { state: t.state, code: t.error?.code, message: t.error?.message ?? '' };
}

/**
 * A full stream whose first 64 KiB chunk (frame 0, which the server checks as it arrives) holds only a harmless
 * file: the hostile command comes later, while btrfs receive is already applying the stream.
 */
function padded(uuid: string): SendStreamBuilder {
  const b = new SendStreamBuilder().subvol('snap', uuid).file('pad', Buffer.alloc(32768, 1));
  for (let at = 32768; at < 3 * 32768; at += 32768) b.write('pad', Buffer.alloc(32768, 1), at);
  return b;
}

const chmod = (b: SendStreamBuilder, file: string, mode: bigint) => b.cmd(SendCmd.CHMOD, tlv(SendAttr.PATH, file), tlv(SendAttr.MODE, u64(mode)));
const mknod = (b: SendStreamBuilder, node: string, mode: bigint, rdev: number) =>
  b.cmd(SendCmd.MKNOD, tlv(SendAttr.PATH, node), tlv(SendAttr.INO, u64(400)), tlv(SendAttr.MODE, u64(mode)), tlv(SendAttr.RDEV, u64(rdev)));
const setXattr = (b: SendStreamBuilder, file: string, name: string, value: Buffer) =>
  b.cmd(SendCmd.SET_XATTR, tlv(SendAttr.PATH, file), tlv(SendAttr.XATTR_NAME, Buffer.from(name, 'latin1')), tlv(SendAttr.XATTR_DATA, value));

/** Every setuid/setgid file, device node and file with capabilities under `dir`. */
async function privileged(dir: string): Promise<string[]> {
  const found: string[] = [];
  for (const rel of await listTree(dir)) {
    // The server may be writing its own files beside (the catalog's temporary copy comes and goes).
    const st = await fs.lstat(path.join(dir, rel)).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return null;
      throw err;
    });
    if (st === null) continue;
    if (st.isCharacterDevice() || st.isBlockDevice()) found.push(`device ${rel}`);
    if (st.isFile() && (st.mode & 0o6000) !== 0) found.push(`setuid/setgid ${rel} (${(st.mode & 0o7777).toString(8)})`);
  }
  const { stdout } = await promisify(execFile)('getcap', ['-r', dir]);
  for (const line of stdout.split('\n')) if (line.trim() !== '') found.push(`capabilities ${line.trim()}`);
  return found;
}

test('privilegedFiles refuse: MODE above 2^53 and an xattr name cut at its NUL are refused, and leave no setuid file, device or capability', rootOnly, async (t) => {
  const h = await hostileServer(t, { privilegedFiles: 'refuse' });

  // The control: the same shapes with harmless bits go through, and btrfs receive applies MODE's low 32 bits.
  const good = randomUuid();
  let harmless = padded(good).file('sh', data);
  harmless = chmod(harmless, 'sh', HIGH | 0o755n);
  harmless = mknod(harmless, 'fifo', HIGH | S_IFIFO, 0);
  harmless = setXattr(harmless, 'sh', 'user.note', data);
  const ok = await push(h, 'harmless', harmless.end().build(), good);
  assert.equal(ok.state, 'received', ok.message);
  const received = path.join(h.volumeDir('harmless'), 'snap');
  assert.equal((await fs.stat(path.join(received, 'sh'))).mode & 0o7777, 0o755, 'receive applied the low bits of MODE');
  assert.ok((await fs.lstat(path.join(received, 'fifo'))).isFIFO());

  const cases: { name: string; code: string; build: (uuid: string) => SendStreamBuilder }[] = [
    { name: 'CHMOD (1<<60)|04755', code: 'sendstream_setuid_refused', build: (u) => chmod(padded(u).file('sh', data), 'sh', HIGH | 0o4755n) },
    { name: 'CHMOD (1<<60)|02755', code: 'sendstream_setuid_refused', build: (u) => chmod(padded(u).file('sh', data), 'sh', HIGH | 0o2755n) },
    { name: 'MKNOD (1<<60)|S_IFCHR (/dev/null, 1:3)', code: 'sendstream_device_refused', build: (u) => mknod(padded(u), 'null', HIGH | S_IFCHR, 0x103) },
    { name: 'MKNOD (1<<60)|S_IFBLK (/dev/sda, 8:0)', code: 'sendstream_device_refused', build: (u) => mknod(padded(u), 'sda', HIGH | S_IFBLK, 0x800) },
    {
      name: 'SET_XATTR security.capability\\0x',
      code: 'sendstream_unsafe_name',
      build: (u) => setXattr(padded(u).file('sh', data), 'sh', 'security.capability\0x', CAP_SETUID),
    },
  ];
  for (const [i, c] of cases.entries()) {
    const uuid = randomUuid();
    const got = await push(h, `attack${i}`, c.build(uuid).end().build(), uuid);
    assert.equal(got.state, 'failed', `${c.name} was ${got.state}: ${got.message}`);
    assert.equal(got.code, c.code, `${c.name}: ${got.message}`);
    // The refusal stopped btrfs receive, and its staging subvolume (with anything it had made) was deleted.
    assert.deepEqual(await fs.readdir(h.volumeDir(`attack${i}`)).catch(() => []), [], c.name);
  }
  assert.deepEqual(await privileged(h.mount), [], 'no setuid file, device node or file capability anywhere on the server');
});
