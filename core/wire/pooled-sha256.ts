/**
 * SHA-256 on libuv's thread pool instead of the event loop. The server verifies every frame's chunk hash; taken on
 * the main thread that was about 0.75 s per GB, in a process whose one thread also parses, decompresses and writes
 * every upload. WebCrypto's digest copies its input and hashes the copy on a pool thread, which costs the main
 * thread about a third of hashing it there (measured on 4 MiB chunks), and lets a second core do the rest.
 */
import { webcrypto } from 'node:crypto';

export async function sha256Pooled(data: Uint8Array): Promise<Buffer> {
  return Buffer.from(await webcrypto.subtle.digest('SHA-256', data));
}
