/** The path of the bundle for the sources under `root` as they are now, building it into `cacheDir` if there is none. */
export function bundleFor(cacheDir?: string, root?: string): Promise<string>;
/** Loads the command from its bundle (kept in `cacheDir`); false if there is none and none can be made. */
export function runBundled(cacheDir?: string): Promise<boolean>;
/** A digest of every source file's path, size and modification time under `root`. */
export function sourceKey(root?: string): string;
