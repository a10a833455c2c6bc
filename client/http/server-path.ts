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
