/**
 * The resume path's speed: a resume after 90 GB runs `btrfs send` again and hashes 90 GB (core/wire hashRawPrefix,
 * as client/push/framed-send.ts uses it) before it sends a byte. Measured on the full stream:
 *   btrfs send > /dev/null                          the baseline: how fast the stream can come at all
 *   hashRawPrefix over the stream saved to a file   the hashing alone (read from the page cache)
 *   btrfs send | SendStreamCheck | hashRawPrefix     the whole resume path, as a resume runs it
 */
import { createReadStream } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as btrfs from '../../core/btrfs/index.ts';
import { DEFAULT_CHUNK_SIZE, SendStreamCheck, hashRawPrefix } from '../../core/wire/index.ts';
import type { Cleanup } from './cleanup.ts';
import { mbps, timed, timedShell } from './measure.ts';
import { SEND_SCRIPT, sendArgs, type Stream } from './world.ts';

export interface HashResult {
  rawBytes: number;
  sendToNullMBps: number;
  hashOnlyMBps: number;
  resumePathMBps: number;
}

/** Every chunk of the stream: hashRawPrefix stops at the end of its source. */
const ALL_FRAMES = Number.MAX_SAFE_INTEGER;

export async function runHashing(cleanup: Cleanup, stream: Stream, say: (line: string) => void): Promise<HashResult> {
  const dir = await mkdtemp(path.join(os.tmpdir(), `snapferry-bench-stream-${process.pid}-`));
  const file = path.join(dir, 'full.stream');
  cleanup.after(() => rm(dir, { recursive: true, force: true }));
  try {
    say('hashing: btrfs send > /dev/null');
    await timedShell(`${SEND_SCRIPT} > "$3"`, [...sendArgs(stream), file]);
    const rawBytes = (await stat(file)).size;
    const toNull = await timedShell(`${SEND_SCRIPT} > /dev/null`, sendArgs(stream));

    say('hashing: hashRawPrefix over the saved stream, then behind btrfs send');
    const hashOnly = await timed(() => hashAll(createReadStream(file, { highWaterMark: 1024 * 1024 })));
    const resume = await timed(async () => {
      const send = btrfs.send(stream.snapshot);
      const hashed = await hashAll(send.stream.pipe(new SendStreamCheck()));
      await send.done;
      return hashed;
    });
    for (const [what, hashed] of [['saved stream', hashOnly.value], ['resume path', resume.value]] as const) {
      if (hashed !== rawBytes) throw new Error(`hashRawPrefix over the ${what} covered ${hashed} bytes of a ${rawBytes}-byte stream`);
    }
    return {
      rawBytes,
      sendToNullMBps: mbps(rawBytes, toNull.seconds),
      hashOnlyMBps: mbps(rawBytes, hashOnly.seconds),
      resumePathMBps: mbps(rawBytes, resume.seconds),
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Hashes a whole stream as a resume hashes its prefix; returns the raw bytes covered. */
async function hashAll(source: AsyncIterable<Uint8Array>): Promise<number> {
  const prefix = await hashRawPrefix(source, { chunkSize: DEFAULT_CHUNK_SIZE, frames: ALL_FRAMES });
  for await (const rest of prefix.rest) throw new Error(`${rest.length} bytes left after the end of the stream`);
  return prefix.rawOffset;
}
