// One compression worker thread (see compression-pool.ts): hashes and compresses the raw chunks it is sent, with
// one zstd context reused for all of them, and says how long the compression took so the auto level can learn
// this machine's speed on this data. Plain JavaScript: see zstd-chunk.mjs. Messages: compression-messages.ts.
//
// A compressed chunk's raw memory goes back to the main thread (`spare`), which fills it with the next chunk. Left
// here it would be garbage that this thread's GC, which sees almost no JavaScript allocation, frees only every few
// tens of MB: 4 MiB chunks piled up to over 100 MB per worker before it ran. A zstd payload's memory comes back the
// same way once the server has acknowledged it (`reuse`), and the next payload is copied into it (payload-shelf.mjs).
import { parentPort } from 'node:worker_threads';
import { transferListOf, owned } from './transferable.mjs';
import { ChunkCompression } from './chunk-compression.mjs';

const compression = new ChunkCompression();

parentPort.on('message', (req) => {
  try {
    for (const memory of req.reuse ?? []) compression.reuse(memory);
    const raw = Buffer.from(req.raw.buffer, req.raw.byteOffset, req.raw.byteLength);
    const { codec, payload, rawHash: hash, compressNs, freshPayload } = compression.run(raw, req.level);
    const rawHash = owned(hash);
    // A zstd payload is the start of its shelf memory, which moves whole (owned() would copy the view).
    const out = codec === 'zstd' ? payload : owned(payload);
    // Kept raw, the payload is the chunk itself and already goes back.
    const spare = codec === 'zstd' ? req.raw : undefined;
    const sent = spare ? [out, rawHash, spare] : [out, rawHash];
    parentPort.postMessage({ id: req.id, codec, payload: out, rawHash, compressNs, spare, freshPayload }, transferListOf(...sent));
  } catch (err) {
    parentPort.postMessage({ id: req.id, error: err instanceof Error ? err.message : String(err) });
  }
});
