/**
 * What each caller may see. A client sees only its own namespace; everything of another client answers exactly like
 * something that does not exist, so ids and names cannot be probed. An admin sees every client's, each item tagged
 * with the `client` it belongs to, and may narrow any list with `?client=NAME`.
 */
import { parseName, type SafeName } from '../core/names.ts';
import type { Snapshot, Status, Transfer } from '../core/protocol.ts';
import { NotFound, countSpools, type ReplicationService } from './replication.ts';
import type { Caller } from './auth.ts';
import { byTaken } from './snapshot-time.ts';

/** Stands for "every client" where a single client's name would be (the admin's VolumeList.client). */
export const ALL_CLIENTS = '*';

/** The clients whose things a request covers. */
export function clientsFor(service: ReplicationService, caller: Caller, query: string | undefined): SafeName[] {
  if (caller.role === 'client') return [caller.client];
  if (query !== undefined) return [parseName(query, 'client')];
  const names = new Set<string>();
  for (const s of service.catalog.allSnapshots()) names.add(s.client);
  for (const t of service.catalog.transfers()) names.add(t.client);
  return [...names].sort() as SafeName[];
}

/** The client that owns transfer `id` as this caller may see it; a client always gets its own name back. */
export function ownerOf(service: ReplicationService, caller: Caller, id: string): SafeName {
  if (caller.role === 'client') return caller.client;
  const owner = service.catalog.transfer(id)?.client;
  if (owner === undefined) throw new NotFound(`transfer ${id}`);
  return owner as SafeName;
}

/**
 * Refuses a tus request on an upload that is not the caller's, with the very error a missing one gets. It runs
 * before anything else touches the upload: a HEAD of another client's upload must not take its lease either.
 */
export function assertOwnUpload(service: ReplicationService, caller: Caller, id: string): void {
  if (caller.role !== 'client' || !ownsUpload(service, caller.client, id)) throw new NotFound(`transfer ${id}`);
}

/** Whether upload `id` is `client`'s: the one rule, for the route (assertOwnUpload) and for tus (server/upload-store/tus-server.ts). */
export function ownsUpload(service: ReplicationService, client: string, id: string): boolean {
  return service.catalog.transfer(id)?.client === client;
}

/** A client's counts (orphaned spools among them) are its own; the admin's are the whole server's. Free space is everyone's business. */
export async function statusFor(service: ReplicationService, caller: Caller): Promise<Status> {
  const all = await service.status();
  if (caller.role === 'admin') return all;
  const snapshots = service.catalog.snapshots(caller.client);
  const transfers: Record<string, number> = {};
  for (const t of service.catalog.transfers({ client: caller.client })) transfers[t.state] = (transfers[t.state] ?? 0) + 1;
  const orphanedSpools = countSpools(await service.orphanedSpools(caller.client));
  return { ...all, volumes: new Set(snapshots.map((s) => s.volume)).size, snapshots: snapshots.length, transfers, orphanedSpools };
}

export async function volumesFor(service: ReplicationService, caller: Caller, query: string | undefined) {
  const volumes = [];
  for (const client of clientsFor(service, caller, query)) {
    for (const v of await service.volumes(client)) volumes.push(caller.role === 'admin' ? { client, ...v } : v);
  }
  return { client: caller.role === 'admin' ? ALL_CLIENTS : caller.client, volumes };
}

export async function snapshotsFor(service: ReplicationService, caller: Caller, volume: SafeName, query: string | undefined) {
  if (caller.role === 'client') return { volume, ...(await service.snapshots(caller.client, volume)) };
  const snapshots: (Snapshot & { client: string })[] = [];
  // Removed-snapshot notes already carry their `client`.
  const removed = [];
  for (const client of clientsFor(service, caller, query)) {
    const one = await service.snapshots(client, volume);
    snapshots.push(...one.snapshots.map((s) => ({ client, ...s })));
    removed.push(...one.removed);
  }
  snapshots.sort(byTaken);
  return { volume, snapshots, removed };
}

export async function transfersFor(service: ReplicationService, caller: Caller, query: string | undefined): Promise<Transfer[]> {
  const out: Transfer[] = [];
  // Transfer already carries its `client`.
  for (const client of clientsFor(service, caller, query)) out.push(...(await service.transfers(client)));
  return out;
}
