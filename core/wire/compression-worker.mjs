// One compression worker thread (see compression-pool.ts): hashes and compresses the raw chunks it is sent, with
// one zstd context reused for all of them, and says how long the compression took so the auto level can learn
// this machine's speed on this data. Plain JavaScript: see zstd-chunk.mjs. Messages: compression-messages.ts.
import { createHash } from 'node:crypto';
import { parentPort } from 'node:worker_threads';
import { transferListOf, owned } from './transferable.mjs';
import { ZstdChunkCompressor } from './zstd-chunk.mjs';

const compressor = new ZstdChunkCompressor();

parentPort.on('message', (req) => {
  try {
    const raw = Buffer.from(req.raw.buffer, req.raw.byteOffset, req.raw.byteLength);
    const rawHash = owned(createHash('sha256').update(raw).digest());
    const started = process.hrtime.bigint();
    const { codec, payload } = compressor.compress(raw, req.level);
    const compressNs = Number(process.hrtime.bigint() - started);
    const out = owned(payload);
    parentPort.postMessage({ id: req.id, codec, payload: out, rawHash, compressNs }, transferListOf(out, rawHash));
  } catch (err) {
    parentPort.postMessage({ id: req.id, error: err instanceof Error ? err.message : String(err) });
  }
});
