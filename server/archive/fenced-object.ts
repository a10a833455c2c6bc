/**
 * A mutable object of one upload (its `state.json`) that only the lease's holder writes, made safe against a holder
 * that lost the lease without knowing (paused past it, cut off): the object carries the generation that last claimed
 * it, each new holder's first act is to claim it (a swap that stamps its generation), and every later write is a
 * swap from the ETag its holder wrote last. So once a newer generation has claimed the object, an older holder's
 * write meets an ETag it never saw and fails as `lease_lost`, instead of overwriting the newer holder's progress.
 */
import { z } from 'zod';
import type { ObjectStore } from './object-store.ts';
import type { ArchiveLease } from './lease.ts';
import { encodeJson, parseJson } from './json-object.ts';

/** How the object is stored: the value, and which lease generation wrote it. */
function envelope<T>(schema: z.ZodType<T>) {
  return z.object({ generation: z.number().int().nonnegative(), holder: z.string(), value: schema });
}

/** Lost races in a row while claiming (the older holder still writing) before giving up. */
const MAX_CLAIM_ATTEMPTS = 8;

export class FencedObject<T> {
  private constructor(
    private readonly store: ObjectStore,
    private readonly lease: ArchiveLease,
    readonly key: string,
    private etag: string,
    private current: T,
  ) {}

  /**
   * Claims KEY for LEASE's generation and returns it with its value (`initial` when absent). Throws LeaseLost when a
   * newer generation claimed it already.
   */
  static async claim<T>(store: ObjectStore, lease: ArchiveLease, key: string, schema: z.ZodType<T>, initial: T): Promise<FencedObject<T>> {
    const shape = envelope(schema);
    for (let attempt = 1; attempt <= MAX_CLAIM_ATTEMPTS; attempt++) {
      lease.check();
      const got = await store.get(key);
      const old = got ? parseJson(key, got.body, shape) : null;
      if (old && old.generation > lease.generation) throw lease.lost(`generation ${old.generation} claimed ${key}`);
      const value = old ? (old.value as T) : initial;
      const body = encodeJson({ generation: lease.generation, holder: lease.holder, value });
      // An older holder may still be writing: its write wins this race, and we claim again from what it wrote.
      const written = got ? await store.swap(key, body, got.etag) : await store.putIfAbsent(key, body);
      if (written) return new FencedObject(store, lease, key, written.etag, value);
    }
    throw lease.lost(`${key} kept changing while this instance claimed it`);
  }

  get value(): T {
    return this.current;
  }

  /** Replaces the value, only if nobody wrote the object since this holder did; throws LeaseLost otherwise. */
  async write(value: T): Promise<void> {
    this.lease.check();
    const body = encodeJson({ generation: this.lease.generation, holder: this.lease.holder, value });
    const written = await this.store.swap(this.key, body, this.etag);
    if (!written) throw this.lease.lost(`${this.key} was claimed by a newer holder`);
    this.etag = written.etag;
    this.current = value;
  }
}
