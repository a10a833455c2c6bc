/** Types of build.mjs for the tests that import it. */
export const WORKER_FILE: RegExp;
export function workerEntries(root?: string): Record<string, string>;
export function buildDist(root?: string): Promise<string>;
