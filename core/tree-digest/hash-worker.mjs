// One hashing worker thread (see hash-pool.ts): hashes the file ranges it is sent, with one read buffer reused for
// all of them. Messages: hash-messages.ts.
import { parentPort } from 'node:worker_threads';
import { ChangedWhileReading, hashPieces, PIECE_SIZE } from './hash-pieces.mjs';

const buffer = Buffer.allocUnsafe(PIECE_SIZE);

parentPort.on('message', (req) => {
  try {
    const digests = req.items.map((item) =>
      hashPieces(item.path, item.ino, item.size, item.offset, item.length, buffer),
    );
    // Copied, not transferred: 32 bytes a MiB, and small Buffers share Node's pooled memory.
    parentPort.postMessage({ id: req.id, digests });
  } catch (err) {
    parentPort.postMessage({
      id: req.id,
      error: err instanceof Error ? err.message : String(err),
      changed: err instanceof ChangedWhileReading || err?.code === 'ENOENT',
      errno: err?.code,
    });
  }
});

