/**
 * Whether a send stream's path or name stays where btrfs receive puts it. btrfs receive joins the stream's paths to
 * the target directory as they come, and hands them to the C library, which stops at the first NUL: the path checked
 * must be the path applied, and must not climb out.
 */

const MAX_NAME_BYTES = 255;
const SLASH = 0x2f;
const DOT = 0x2e;

/**
 * Why `path` could leave the directory it is joined to, or undefined when it cannot: absolute, a NUL (btrfs-progs
 * would cut the path there, so it would act on another path than the one checked), or a `..` component. An empty
 * path is the subvolume's own root (btrfs send writes `utimes ""` for it).
 */
export function unsafePathReason(path: Uint8Array): string | undefined {
  if (path[0] === SLASH) return 'it is absolute';
  if (path.includes(0)) return 'it contains a NUL byte';
  let start = 0;
  for (let i = 0; i <= path.length; i++) {
    if (i < path.length && path[i] !== SLASH) continue;
    if (i - start === 2 && path[start] === DOT && path[start + 1] === DOT) return 'it has a ".." component';
    start = i + 1;
  }
  return undefined;
}

/** Why `name` is not one plain path component (the new subvolume's name), or undefined when it is. */
export function unsafeNameReason(name: Uint8Array): string | undefined {
  if (name.length === 0) return 'it is empty';
  if (name.length > MAX_NAME_BYTES) return `it is ${name.length} bytes long, over btrfs's ${MAX_NAME_BYTES}`;
  if (name.includes(SLASH)) return 'it contains a "/"';
  if (name.includes(0)) return 'it contains a NUL byte';
  if (name.some((b) => b < 0x20 || b === 0x7f)) return 'it contains a control character';
  if ((name.length === 1 && name[0] === DOT) || (name.length === 2 && name[0] === DOT && name[1] === DOT)) {
    return `it is "${Buffer.from(name).toString('latin1')}"`;
  }
  return undefined;
}
