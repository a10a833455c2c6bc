/**
 * A path of the API on --server. The server may sit under a path prefix a proxy strips (README: publicUrl with a
 * path, e.g. https://example.org/snapferry): the path is joined below that prefix, never resolved against the host
 * root, which `new URL('/v1/...', server)` would do and so drop the prefix. Every request the client makes, the tus
 * creation included, is built here.
 */
export function serverBase(server: string): URL {
  return new URL(server.endsWith('/') ? server : `${server}/`);
}

export function onServer(server: string | URL, path: string): string {
  return new URL(path.replace(/^\//, ''), typeof server === 'string' ? serverBase(server) : server).toString();
}

/** The API's own prefix: the client adds it to every path (routes in core/protocol.ts), so --server must not carry it. */
const API_PREFIX = 'v1';

/**
 * The server's own "no such endpoint" (server/app.ts) on a --server whose path ends in /v1: the URL of the API was given
 * for the server's base URL, so every request went to /v1/v1/... A proxy prefix may be named v1 too, so the URL is not
 * cut by itself: the answer tells, and the message says which URL to give. Null for any other answer.
 */
export function apiPrefixGiven(base: URL, status: number, code: string, message: string): { message: string; suggestion: string } | null {
  const segments = base.pathname.split('/').filter((s) => s !== '');
  if (status !== 404 || code !== 'not_found' || !message.startsWith('no such endpoint') || segments.at(-1) !== API_PREFIX) return null;
  const suggestion = `${base.origin}${segments.slice(0, -1).map((s) => `/${s}`).join('')}`;
  return {
    suggestion,
    message: `${message}: the server URL ends in /${API_PREFIX}, which snapferry adds itself; give the server's base URL without it: ${suggestion}`,
  };
}
