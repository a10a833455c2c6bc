/** Types of deb.mjs for the tests that import it. */
export const INSTALLED_BIN: string;
export const EXAMPLES: string;
export function nodeDependency(engines: { node?: string } | undefined): string;
export function unitFor(text: string, bin?: string): string;
export function buildDeb(root?: string, outDir?: string): Promise<string>;
