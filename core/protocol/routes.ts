/** The server's HTTP routes: every path a client asks for is built here, so client and server cannot spell one differently. */
import { restoreQueryString, type RestoreQuery } from './restore.ts';

export const API_PREFIX = '/v1';
export const UPLOADS_PATH = `${API_PREFIX}/uploads`;

export const routes = {
  status: `${API_PREFIX}/status`,
  volumes: `${API_PREFIX}/volumes`,
  snapshots: (volume: string) => `${API_PREFIX}/volumes/${encodeURIComponent(volume)}/snapshots`,
  transfers: `${API_PREFIX}/transfers`,
  transfer: (id: string) => `${API_PREFIX}/transfers/${encodeURIComponent(id)}`,
  abort: (id: string) => `${API_PREFIX}/transfers/${encodeURIComponent(id)}/abort`,
  rewind: (id: string) => `${API_PREFIX}/transfers/${encodeURIComponent(id)}/rewind`,
  /** POST with the push's session header: that push has stopped and lets go of the upload (its lease), which stays. */
  release: (id: string) => `${API_PREFIX}/transfers/${encodeURIComponent(id)}/release`,
  frames: (id: string, from: number, limit: number) =>
    `${API_PREFIX}/transfers/${encodeURIComponent(id)}/frames?from=${from}&limit=${limit}`,
  /** A received snapshot as a framed send stream, for restore (RESTORE_QUERY, RESTORE_HEADERS). */
  restoreStream: (volume: string, snapshot: string, query: RestoreQuery) =>
    `${API_PREFIX}/volumes/${encodeURIComponent(volume)}/snapshots/${encodeURIComponent(snapshot)}/stream?${restoreQueryString(query)}`,
  /** Verify (issue 18): POST VerifyStart starts or joins the digest of the server's copy of a snapshot. */
  verify: `${API_PREFIX}/verify`,
  /** GET: the job's VerifyJob; DELETE: the start that was given this id (its hold) is done with the job. */
  verifyJob: (id: string) => `${API_PREFIX}/verify/${encodeURIComponent(id)}`,
  /** POST ChildrenRequest -> ChildrenAnswer. */
  verifyChildren: (id: string) => `${API_PREFIX}/verify/${encodeURIComponent(id)}/children`,
  /** POST RecordsRequest -> RecordsAnswer. */
  verifyRecords: (id: string) => `${API_PREFIX}/verify/${encodeURIComponent(id)}/records`,
} as const;

/** Most frame records one GET /v1/transfers/:id/frames returns. */
export const MAX_FRAMES_PER_PAGE = 10_000;
