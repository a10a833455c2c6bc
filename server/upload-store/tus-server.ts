/**
 * @tus/server wired to the upload store (tus-store.ts adapts it). One tus upload is one transfer (docs/design.md, "The flow of a push"); the creation
 * request's metadata is checked by the replication core before tus creates anything.
 */
import crypto from 'node:crypto';
import { Server } from '@tus/server';
import { ERRORS } from '@tus/utils';
import { UPLOADS_PATH } from '../../core/protocol.ts';
import type { SafeName } from '../../core/names.ts';
import { SnapferryError } from '../../core/errors.ts';
import type { AppService } from '../app-service.ts';
import { isTransferId } from '../layout.ts';
import { publicBase, type PublicUrl } from '../public-url.ts';
import { ownsUpload } from '../views.ts';
import { errorBody, statusOf } from '../http-errors.ts';
import type { Logger } from '../log.ts';
import { TusStore } from './tus-store.ts';
import { isRequestCut, thrownByTus } from './tus-refusals.ts';
import { ArrivalLocker } from './arrival-locker.ts';

export type { Server as TusServer } from '@tus/server';

export interface TusOptions {
  /** Trust X-Forwarded-Proto/Host from a reverse proxy (nginx overwrites them) when building upload URLs. */
  behindProxy: boolean;
  /** Where clients reach the server (server/public-url.ts): the base of every upload URL, whatever the request says. */
  publicUrl?: PublicUrl | undefined;
  clientOf(req: Request): SafeName;
}

const ARRIVALS = new WeakMap<Server, ArrivalLocker>();

export function createTusServer(service: Pick<AppService, 'uploadStore' | 'beginTransfer' | 'transferOwner' | 'abort' | 'endRefusedCreation'>, log: Logger, options: TusOptions): Server {
  const arrivals = new ArrivalLocker(() => ERRORS.ERR_LOCK_TIMEOUT);
  // The upload each creation request began, until its answer: one refused after that (its first bytes, in a
  // creation-with-upload) goes without a Location, so no client can ever resume or end it.
  const begun = new WeakMap<object, { client: SafeName; id: string }>();
  const server = new Server({
    // Each upload's requests take tus's lock in the order they reached our route (arrival-locker.ts says why); the
    // route tells it (arrivalsOf below).
    locker: (req) => arrivals.lockerFor(req),
    path: UPLOADS_PATH,
    datastore: new TusStore(service.uploadStore()),
    respectForwardedHeaders: options.behindProxy,
    // Our ids name spool files: 32 lowercase hex digits (server/layout.ts isTransferId).
    namingFunction: () => crypto.randomBytes(16).toString('hex'),
    // Where every tus method (HEAD, PATCH, DELETE, GET) learns which upload a request names: the one place to check
    // whose it is. @tus/server reads the id off the end of the whole URL, query string included, so
    // `/v1/uploads/MINE?x=/THEIRS` named theirs while every check on the route saw mine. Another client's upload, like
    // any URL that is not exactly UPLOADS_PATH/ID, is a missing one (404).
    getFileIdFromRequest: (req) => {
      const id = uploadIdOf(req.url);
      return id !== null && ownsUpload(service, options.clientOf(req), id) ? id : undefined;
    },
    // A PATCH that verified nothing (a cut mid-frame) must not hold the lock for long after the socket died.
    lockDrainTimeout: 5000,
    // publicUrl, or the request's scheme and host[:port] (checked in onUploadCreate, before anything is created:
    // tus calls this only once the upload exists).
    generateUrl: (req, { path, id }) => `${publicBase(req as unknown as Request, options)}${path}/${id}`,
    onUploadCreate: async (req, upload) => {
      try {
        publicBase(req as unknown as Request, options);
        const client = options.clientOf(req as unknown as Request);
        await service.beginTransfer(client, upload.id, upload.metadata ?? {});
        begun.set(req, { client, id: upload.id });
      } catch (err) {
        throw asTusError(err);
      }
      return {};
    },
    // A thrown error's answer; tus writes the refusals of its header checks without this hook (tusAnswer has them).
    onResponseError: async (req, err) => {
      const name = Object.entries(ERRORS).find(([, known]) => known === err)?.[0];
      const ours = err instanceof SnapferryError ? err : name === undefined ? undefined : thrownByTus(name, req.method, req.headers);
      // A creation refused after its upload began (its first frame refused: 460, 422, 409; no Location) is ended here,
      // before the answer: left, it was shown uploading and held its volume (volume_busy) until it expired. It ends
      // failed with what its client is told, not aborted: nobody aborted it, and `status` must say why it ended. A
      // body the line cut is no refusal (its client hears nothing, and request_cut's words say the upload goes on):
      // that one ends as an abort does.
      const refused = begun.get(req);
      if (refused) {
        begun.delete(req);
        const told = errorBody(ours ?? err).error;
        const ending = isRequestCut(told.code)
          ? service.abort(refused.client, refused.id)
          : service.endRefusedCreation(refused.client, refused.id, new SnapferryError(told.code, told.message));
        await ending.catch((e: unknown) => log.warn({ err: e, transfer: refused.id }, 'could not end a refused creation\'s upload'));
      }
      if (ours) return asTusError(ours);
      if (!('status_code' in err)) log.error({ err }, 'tus request failed');
      return asTusError(err);
    },
  });
  ARRIVALS.set(server, arrivals);
  return server;
}

/** The locker of a server made by createTusServer, which the upload route tells when each request arrived. */
export function arrivalsOf(tus: Server): ArrivalLocker | null {
  return ARRIVALS.get(tus) ?? null;
}

/** The upload id of a URL whose path is exactly UPLOADS_PATH/ID (ID as server/layout.ts names them), else null. */
export function uploadIdOf(url: string): string | null {
  const { pathname } = new URL(url);
  const prefix = `${UPLOADS_PATH}/`;
  if (!pathname.startsWith(prefix)) return null;
  const id = pathname.slice(prefix.length);
  return isTransferId(id) ? id : null;
}

function asTusError(err: unknown): { status_code: number; body: string } {
  if (err && typeof err === 'object' && 'status_code' in err && 'body' in err) {
    return err as { status_code: number; body: string };
  }
  return { status_code: statusOf(err), body: JSON.stringify(errorBody(err)) };
}
