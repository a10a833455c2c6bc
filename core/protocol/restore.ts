/** What a restore asks for in its query, and what the answer's headers say back about the stream it carries. */

/**
 * What a restore asks for. `parent`: the UUID (as the catalog lists it) of a snapshot of the same volume that the
 * restoring machine holds, for an incremental stream; absent for a full one. `fromFrame` and `chain` resume: the data
 * frames the client already holds verified, and the hex chain hash after them (the server regenerates the stream and
 * refuses with 409 stream_mismatch when its chain differs). `skip`: bytes of frame `fromFrame` the client already
 * holds (what a cut download brought of it): the answer starts that far into the frame. `client`: whose snapshot,
 * for an admin token only. `parentCtransid`: the local parent's ctransid now, where it is the original that was
 * pushed (not a received copy): the server refuses with 409 parent_changed when its copy was sent at another one.
 */
export interface RestoreQuery {
  parent?: string | null;
  chunkSize: number;
  fromFrame?: number;
  chain?: string;
  skip?: number;
  client?: string;
  parentCtransid?: number;
}

export const RESTORE_QUERY = { parent: 'parent', chunkSize: 'chunkSize', fromFrame: 'fromFrame', chain: 'chain', skip: 'skip', client: 'client', parentCtransid: 'parentCtransid' } as const;

export function restoreQueryString(q: RestoreQuery): string {
  const params = new URLSearchParams({ [RESTORE_QUERY.chunkSize]: String(q.chunkSize) });
  if (q.parent) params.set(RESTORE_QUERY.parent, q.parent);
  if (q.fromFrame) params.set(RESTORE_QUERY.fromFrame, String(q.fromFrame));
  if (q.chain !== undefined && q.fromFrame) params.set(RESTORE_QUERY.chain, q.chain);
  if (q.skip) params.set(RESTORE_QUERY.skip, String(q.skip));
  if (q.client !== undefined) params.set(RESTORE_QUERY.client, q.client);
  if (q.parent && q.parentCtransid !== undefined) params.set(RESTORE_QUERY.parentCtransid, String(q.parentCtransid));
  return params.toString();
}

/** Headers of a restore stream's response: what the server is sending, for the client to hold against what it asked. */
export const RESTORE_HEADERS = {
  uuid: 'snapferry-snapshot-uuid',
  /** The parent's catalog UUID, or `none` for a full stream. */
  parentUuid: 'snapferry-parent-uuid',
  chunkSize: 'snapferry-chunk-size',
  fromFrame: 'snapferry-from-frame',
  /** Bytes of frame fromFrame left out of the body (RestoreQuery.skip); 0 when absent. */
  skip: 'snapferry-skip',
} as const;

/** A framed stream (core/wire/frame.ts) as a response body. */
export const FRAMED_STREAM_TYPE = 'application/vnd.snapferry.frames';
