/** Payload memory a worker keeps, and the main thread holds for it (see payload-shelf.mjs). */
export declare const SHELF_BYTES: number;

export declare class PayloadShelf {
  /** Pieces made new so far. */
  fresh: number;
  /** Bytes of memory kept for later payloads. */
  readonly bytes: number;
  put(memory: ArrayBuffer): void;
  /** `n` bytes at the start of memory nothing else uses. */
  take(n: number): Buffer;
}
