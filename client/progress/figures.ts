/**
 * The figures of a transfer in progress: what a tracker computes (client/push/progress.ts for an upload,
 * client/restore/progress.ts for a download) and what every view shows (client/progress/report.ts, format.ts).
 * A type of its own, so that the views and the trackers depend on it and not on each other. Byte counts include a
 * resumed prefix.
 */
export interface ProgressFigures {
  snapshot: string;
  /** Which way the framed stream goes: a push's upload or a restore's download. */
  direction: 'upload' | 'download';
  /** Raw send-stream bytes the upload has carried, mapped from the wire offset through the frames. */
  rawBytes: number;
  /** Bytes of the framed stream carried: uploaded (the tus offset), or downloaded. */
  wireBytes: number;
  /**
   * Of wireBytes, what was already there when this run began: the server's offset of an upload resumed from an
   * earlier run, a restore's spool. Not moved by this run, and not to be shown as sent (it was only hashed).
   */
  wireBytesBefore: number;
  /** The raw stream's length: estimated before the send, exact once the whole stream is framed; null if unknown. */
  rawTotal: number | null;
  rawTotalExact: boolean;
  /** Over the last RATE_WINDOW_MS, counting only what this run sent; null until there is enough history. */
  rawBytesPerSecond: number | null;
  wireBytesPerSecond: number | null;
  /** rawBytes / wireBytes: what compression (and framing) made of the stream; null before the first byte. */
  ratio: number | null;
  /** Raw bytes left at the raw rate; null when the total or the rate is unknown. */
  etaSeconds: number | null;
}
