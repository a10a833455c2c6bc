/**
 * @tus/server wired to the frame-verifying store. One tus upload is one transfer (DESIGN.md step 2); the creation
 * request's metadata is checked by the replication core before tus creates anything.
 */
import crypto from 'node:crypto';
import { Server } from '@tus/server';
import { UPLOADS_PATH } from '../core/protocol.ts';
import type { SafeName } from '../core/names.ts';
import { SnapferryError } from '../core/errors.ts';
import type { ReplicationService } from './replication.ts';
import { errorBody, statusOf } from './http-errors.ts';
import type { Logger } from './log.ts';

export interface TusOptions {
  /** Trust X-Forwarded-Proto/Host from a reverse proxy (nginx overwrites them) when building upload URLs. */
  behindProxy: boolean;
  clientOf(req: Request): SafeName;
}

export function createTusServer(service: ReplicationService, log: Logger, options: TusOptions): Server {
  return new Server({
    path: UPLOADS_PATH,
    datastore: service.store,
    respectForwardedHeaders: options.behindProxy,
    // Our ids name spool files: 32 lowercase hex digits (server/layout.ts isTransferId).
    namingFunction: () => crypto.randomBytes(16).toString('hex'),
    // A PATCH that verified nothing (a cut mid-frame) must not hold the lock for long after the socket died.
    lockDrainTimeout: 5000,
    // @tus/server writes http:// into Location unless a proxy's headers say otherwise. Serving TLS itself
    // (serve --tls-cert), the request's own scheme is the truth (@hono/node-server sets https for a TLS socket).
    generateUrl: (req, { proto, host, path, id }) =>
      `${options.behindProxy ? proto : new URL(req.url).protocol.slice(0, -1)}://${host}${path}/${id}`,
    onUploadCreate: async (req, upload) => {
      try {
        await service.beginTransfer(options.clientOf(req as unknown as Request), upload.id, upload.metadata ?? {});
      } catch (err) {
        throw asTusError(err);
      }
      return {};
    },
    onResponseError: (_req, err) => {
      if (err instanceof SnapferryError) return asTusError(err);
      if (!('status_code' in err)) log.error({ err }, 'tus request failed');
      return undefined;
    },
  });
}

function asTusError(err: unknown): { status_code: number; body: string } {
  if (err && typeof err === 'object' && 'status_code' in err && 'body' in err) {
    return err as { status_code: number; body: string };
  }
  return { status_code: statusOf(err), body: JSON.stringify(errorBody(err)) };
}
