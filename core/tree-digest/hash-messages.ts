/** The messages between the hash pool and its workers (hash-worker.mjs). */

export interface HashItem {
  /** Absolute path as bytes. */
  path: Uint8Array;
  /** The inode number and size the walk saw (decimal strings): a file that no longer matches is an error. */
  ino: string;
  size: string;
  /** A range of the file: offset a multiple of PIECE_SIZE. */
  offset: number;
  length: number;
}

export interface HashRequest {
  id: number;
  items: HashItem[];
}

export type HashResponse =
  | { id: number; digests: Uint8Array[]; error?: undefined }
  | { id: number; error: string; changed: boolean; errno?: string };
