/**
 * A finished stream's manifest, `streams/CLIENT/VOLUME/UUID/manifest.json` (docs/archive.md, "Objects in the
 * bucket"): written once, after the end frame is stored and before the catalog names the stream, so that every
 * catalog entry points at a manifest and every manifest at segments that exist. A restore reads the stream from the
 * segments it lists, exactly as they were stored.
 */
import { z } from 'zod';
import type { SafeName } from '../../core/names.ts';
import { SnapferryError } from '../../core/errors.ts';
import type { ObjectStore } from './object-store.ts';
import { encodeJson, readJson } from './json-object.ts';

export const MANIFEST_VERSION = 1 as const;

export const ManifestSegment = z.strictObject({
  /** The segment object's key, relative to the archive's prefix. */
  key: z.string(),
  first: z.number().int().nonnegative(),
  last: z.number().int().nonnegative(),
  wireStart: z.number().int().nonnegative(),
  wireEnd: z.number().int().positive(),
  rawEnd: z.number().int().nonnegative(),
  chain: z.string(),
  end: z.boolean(),
});
export type ManifestSegment = z.infer<typeof ManifestSegment>;

export const Manifest = z.strictObject({
  version: z.literal(MANIFEST_VERSION),
  client: z.string(),
  volume: z.string(),
  snapshot: z.string(),
  uuid: z.string(),
  parentUuid: z.string().nullable(),
  transferId: z.string(),
  chunkSize: z.number().int().positive(),
  /** The stream's data frames (N, the end frame's index). */
  frames: z.number().int().nonnegative(),
  wireBytes: z.number().int().positive(),
  rawBytes: z.number().int().nonnegative(),
  /** The chain after the last data frame, hex (what the end frame carries). */
  chain: z.string(),
  segments: z.array(ManifestSegment).min(1),
});
export type Manifest = z.infer<typeof Manifest>;

export function manifestKey(client: SafeName, volume: SafeName, uuid: string): string {
  return `streams/${client}/${volume}/${uuid}/manifest.json`;
}

/**
 * Writes the manifest once. One already there from the same upload (an earlier try whose catalog swap failed) is
 * taken as it is; one from another upload of the same UUID is a conflict, never overwritten.
 */
export async function writeManifest(store: ObjectStore, manifest: Manifest): Promise<string> {
  const key = manifestKey(manifest.client as SafeName, manifest.volume as SafeName, manifest.uuid);
  if (await store.putIfAbsent(key, encodeJson(manifest))) return key;
  const there = await readManifest(store, key);
  if (there?.transferId === manifest.transferId) return key;
  throw new SnapferryError('snapshot_uuid_taken', `the archive already holds snapshot ${manifest.uuid} of ${manifest.volume} from another upload`, {
    details: { volume: manifest.volume, uuid: manifest.uuid, transferId: there?.transferId ?? null },
  });
}

export async function readManifest(store: ObjectStore, key: string): Promise<Manifest | null> {
  return (await readJson(store, key, Manifest))?.value ?? null;
}
