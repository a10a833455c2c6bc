/**
 * The seed corpus of each fuzz target: the real send streams made by `btrfs send` (test/wire/fixtures-sendstream),
 * and small hand-made ones in the shapes an attacker starts from, with harmless values (a MODE above 2^53 without
 * setuid bits, a FIFO, a user xattr, an encoded write at the edge of its bounds). jsfuzz mutates inputs of at most
 * 4096 bytes, so the small ones are what it works on; the larger real streams are read whole once.
 */
import { readFile } from 'node:fs/promises';
import { SendStreamBuilder } from '../fixtures/send-streams.ts';
import { frameStream } from '../fixtures/send-streams.ts';
import { SendAttr, SendCmd } from '../../core/wire/sendstream-format.ts';
import { dataTlv, tlv, u32, u64 } from '../wire/sendstream-builder.ts';
import { policyInput } from './targets.ts';
import { streamIdentity, type FrameSealing } from '../../core/wire/frame-seal.ts';
import { deriveKeys } from '../../core/crypto/keys.ts';

const SEALING: FrameSealing = { key: deriveKeys(Buffer.alloc(32, 0x17)), stream: streamIdentity('0ee74cad-645d-9f4f-ad2e-12a379694756', null) };
import type { TargetName } from './targets.ts';

const FIXTURES = new URL('../wire/fixtures-sendstream/', import.meta.url);
const REAL = ['full-v1.bin', 'full-v2-compressed.bin', 'incremental-v1.bin'];
const SELF = '0ee74cad-645d-9f4f-ad2e-12a379694756';
const PARENT = '7dab7cc9-06df-7c47-90bb-e01203c32587';
const HIGH = 1n << 60n;
const data = Buffer.from('#!/bin/sh\nid\n');

function handMade(): Buffer[] {
  const full = () => new SendStreamBuilder().subvol('snap', SELF);
  const encoded = new SendStreamBuilder(2)
    .subvol('snap', SELF)
    .mkfileAt('f')
    .cmd(
      SendCmd.ENCODED_WRITE,
      tlv(SendAttr.PATH, 'f'),
      tlv(SendAttr.FILE_OFFSET, u64(0)),
      tlv(SendAttr.UNENCODED_FILE_LEN, u64(4096)),
      tlv(SendAttr.UNENCODED_LEN, u64(131072)),
      tlv(SendAttr.UNENCODED_OFFSET, u64(0)),
      tlv(SendAttr.COMPRESSION, u32(2)),
      tlv(SendAttr.ENCRYPTION, u32(0)),
      dataTlv(2, Buffer.alloc(64, 3)),
    );
  return [
    full().file('sh', data).chmod('sh', 0o755).end().build(),
    full().file('sh', data).cmd(SendCmd.CHMOD, tlv(SendAttr.PATH, 'sh'), tlv(SendAttr.MODE, u64(HIGH | 0o755n))).end().build(),
    full().cmd(SendCmd.MKNOD, tlv(SendAttr.PATH, 'p'), tlv(SendAttr.INO, u64(300)), tlv(SendAttr.MODE, u64(HIGH | 0o010644n)), tlv(SendAttr.RDEV, u64(0x103))).end().build(),
    full().file('sh', data).setXattr('sh', 'user.note', data).setXattr('sh', 'security.capabilit', Buffer.alloc(20, 1)).end().build(),
    full().mkdir('d').symlink('d/up', '../..').file('d/a', data).clone('d/b', 0, 4096, SELF, 'd/a').end().build(),
    new SendStreamBuilder().snapshot('snap', SELF, PARENT).file('b', data).clone('c', 0, 4096, PARENT, 'a').end().build(),
    encoded.end().build(),
  ];
}

function policyInputs(): Buffer[] {
  const path = [SendAttr.PATH, Buffer.from('f')] as [number, Buffer];
  return [
    policyInput(1, [{ cmd: SendCmd.CHMOD, attrs: [path, [SendAttr.MODE, u64(HIGH | 0o755n)]] }]),
    policyInput(1, [{ cmd: SendCmd.MKNOD, attrs: [path, [SendAttr.INO, u64(300)], [SendAttr.MODE, u64(HIGH | 0o010644n)], [SendAttr.RDEV, u64(0x103)]] }]),
    policyInput(1, [{ cmd: SendCmd.SET_XATTR, attrs: [path, [SendAttr.XATTR_NAME, Buffer.from('security.capabilit')], [SendAttr.XATTR_DATA, Buffer.alloc(20, 1)]] }]),
    policyInput(1, [{ cmd: SendCmd.RENAME, attrs: [path, [SendAttr.PATH_TO, Buffer.from('a/.../b')]] }, { cmd: SendCmd.LINK, attrs: [path, [SendAttr.PATH_LINK, Buffer.from('..x')]] }]),
    policyInput(2, [
      {
        cmd: SendCmd.ENCODED_WRITE,
        attrs: [path, [SendAttr.UNENCODED_FILE_LEN, u64(4096)], [SendAttr.UNENCODED_LEN, u64(131072)], [SendAttr.UNENCODED_OFFSET, u64(0)], [SendAttr.COMPRESSION, u32(7)], [SendAttr.DATA, Buffer.alloc(8, 1)]],
      },
    ]),
    policyInput(1, [{ cmd: SendCmd.CLONE, attrs: [path, [SendAttr.CLONE_UUID, Buffer.alloc(16, 0x5a)], [SendAttr.CLONE_PATH, Buffer.from('g')]] }]),
  ];
}

/** The seeds of every target, by target. */
export async function seeds(): Promise<Record<TargetName, Buffer[]>> {
  const real = await Promise.all(REAL.map((name) => readFile(new URL(name, FIXTURES))));
  const streams = [...real, ...handMade()];
  const small = streams.filter((s) => s.length <= 4096);
  // Framed as the client frames them, raw (level 0) and zstd (level 3) both; and the empty stream, a lone end frame.
  const frames = [
    ...(await Promise.all(small.map((s) => frameStream(s, 65536, 0)))),
    ...(await Promise.all(small.map((s) => frameStream(s, 65536, 3)))),
    await frameStream(Buffer.alloc(0), 65536),
    // Sealed (client-side encryption), raw and zstd: verified without a key, by the hash of what travels.
    ...(await Promise.all(small.slice(0, 3).map((s, i) => frameStream(s, 65536, i === 0 ? 0 : 3, SEALING)))),
  ];
  return { frames, sendstream: streams, policy: policyInputs() };
}
