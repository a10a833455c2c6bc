/**
 * How far an upload's spool holds verified frames, as its frame index's last record says (server/spool/frame-index.ts).
 */
import { CHAIN_ZERO } from '../../core/wire/chain.ts';
import type { IndexRecord } from './frame-index.ts';

export interface SpoolProgress {
  wireOffset: number;
  framesVerified: number;
  rawBytes: number;
  chain: Buffer;
  complete: boolean;
}

export function progressFromRecord(last: IndexRecord | null): SpoolProgress {
  if (!last) return { wireOffset: 0, framesVerified: 0, rawBytes: 0, chain: CHAIN_ZERO, complete: false };
  const complete = last.kind === 'end';
  return {
    wireOffset: last.wireEnd,
    framesVerified: complete ? last.index : last.index + 1,
    rawBytes: last.rawEnd,
    chain: last.chain,
    complete,
  };
}
