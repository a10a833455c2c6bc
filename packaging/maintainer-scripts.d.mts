/** Types of maintainer-scripts.mjs for the tests that import it. */
export function maintainerScripts(units: Record<string, string>): { postinst: string; prerm: string; postrm: string };
