/**
 * `format.json` says which layout the objects under the store's prefix follow. The first instance creates it
 * (If-None-Match: *, so two first instances cannot write two different ones); every instance reads it at start and
 * refuses an archive of another version or of another program, before it reads or writes anything else there.
 */
import { z } from 'zod';
import { SnapferryError, StoreUnavailable } from '../../core/errors.ts';
import type { ObjectStore } from './object-store.ts';
import { encodeJson } from './json-object.ts';

export const ARCHIVE_FORMAT_VERSION = 1;
export const FORMAT_KEY = 'format.json';

const Format = z.object({ snapferry: z.string(), version: z.number() }).loose();

/** Creates the archive's format.json, or checks the one there; throws `archive_format_unsupported` on a mismatch. */
export async function ensureFormat(store: ObjectStore, where: string): Promise<void> {
  const mine = { snapferry: 'archive', version: ARCHIVE_FORMAT_VERSION };
  if (await store.putIfAbsent(FORMAT_KEY, encodeJson(mine))) return;
  const got = await store.get(FORMAT_KEY);
  // Deleted between our create and our read: only an operator does that; the next start creates it again.
  if (!got) throw new StoreUnavailable(`${where}/${FORMAT_KEY} vanished while this server read it; try again`);
  let found: z.infer<typeof Format> | null = null;
  try {
    const parsed = Format.safeParse(JSON.parse(got.body.toString('utf8')));
    if (parsed.success) found = parsed.data;
  } catch {
    found = null;
  }
  if (found?.snapferry === mine.snapferry && found.version === mine.version) return;
  const what = found === null
    ? 'holds a format.json that is not a snapferry archive\'s'
    : found.snapferry !== mine.snapferry
      ? `holds a format.json of ${JSON.stringify(found.snapferry)}, not of a snapferry archive`
      : `holds a snapferry archive of format version ${found.version}, and this snapferry reads version ${mine.version}`;
  throw new SnapferryError('archive_format_unsupported', `${where} ${what}: use a snapferry that reads it, or point store: at another bucket or prefix`, {
    details: { where, found: found ?? got.body.toString('utf8').slice(0, 200), expected: mine },
  });
}
