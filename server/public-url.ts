/**
 * Where clients reach this server: the base of the upload URL a tus creation hands out in `Location`. Either the
 * operator says it (`publicUrl`: scheme, host, port and any path prefix a proxy strips), or it is taken from the
 * request, host[:port] only: @tus/server would copy the Host, X-Forwarded-Host or Forwarded host as it came, so
 * `X-Forwarded-Host: evil.example/phish?x=` made `Location: https://evil.example/phish?x=/v1/uploads/ID`.
 */
import { ValidationError } from '../core/errors.ts';

/** The checked `publicUrl` (parsePublicUrl): an absolute http(s) URL without credentials, query or fragment, no trailing slash. */
export type PublicUrl = string;

/** Parses the `publicUrl` config key; throws ValidationError saying what is wrong. */
export function parsePublicUrl(value: string): PublicUrl {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ValidationError(`expected an absolute URL like https://backup.example.org or https://example.org/snapferry, got ${JSON.stringify(value)}`);
  }
  const problem =
    url.protocol !== 'https:' && url.protocol !== 'http:' ? `its scheme is ${url.protocol.slice(0, -1)}, not https or http`
    : url.username !== '' || url.password !== '' ? 'it carries credentials'
    : url.search !== '' || value.includes('?') ? 'it has a query'
    : url.hash !== '' || value.includes('#') ? 'it has a fragment'
    : null;
  if (problem !== null) throw new ValidationError(`${JSON.stringify(value)} cannot be the public URL: ${problem}`);
  return `${url.origin}${url.pathname.replace(/\/+$/, '')}`;
}

/**
 * host[:port] as RFC 3986 allows it in an authority, without userinfo: a registered name (letters, digits, `-`,
 * `.`), an IPv4 address, or an IPv6 one in brackets; the port 1 to 65535.
 */
const HOST_RE = /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?|\[[0-9A-Fa-f:.]+\])(?::(\d{1,5}))?$/;

export function isHostAndPort(host: string): boolean {
  const m = HOST_RE.exec(host);
  if (!m) return false;
  const port = m[1] === undefined ? 1 : Number(m[1]);
  return port >= 1 && port <= 65535;
}

/** tus's reading of a Forwarded header (RFC 7239): the first host= and proto= in it. */
const FORWARDED_HOST = /host="?([^";]+)/;
const FORWARDED_PROTO = /proto=(https?)/;

/**
 * Scheme and host the request was made to, read as @tus/server reads them: behind a proxy from Forwarded, then
 * X-Forwarded-Proto/Host, then Host; served directly from Host and the socket's own scheme (https for TLS here).
 */
function requestOrigin(req: Request, behindProxy: boolean): { proto: string; host: string | null } {
  const h = req.headers;
  const ownProto = new URL(req.url).protocol.slice(0, -1);
  if (!behindProxy) return { proto: ownProto, host: h.get('host') };
  const forwarded = h.get('forwarded') ?? '';
  const xProto = h.get('x-forwarded-proto');
  return {
    proto: FORWARDED_PROTO.exec(forwarded)?.[1] ?? (xProto === 'http' || xProto === 'https' ? xProto : 'http'),
    host: FORWARDED_HOST.exec(forwarded)?.[1] ?? h.get('x-forwarded-host') ?? h.get('host'),
  };
}

/**
 * The base URL for `Location`: `publicUrl` when set, else `proto://host` from the request, refused unless `host`
 * is host[:port] (a 400 that says what to set). Never a path or query from the caller.
 */
export function publicBase(req: Request, where: { publicUrl?: PublicUrl | undefined; behindProxy: boolean }): string {
  if (where.publicUrl !== undefined) return where.publicUrl;
  const { proto, host } = requestOrigin(req, where.behindProxy);
  if (host === null || !isHostAndPort(host)) {
    throw new ValidationError(
      `the request's host ${JSON.stringify(String(host).slice(0, 100))} (from Host, or X-Forwarded-Host / Forwarded behind a proxy) is not a host[:port], so the server cannot say where the new upload is; send a plain host, or set publicUrl in the server's config`,
    );
  }
  return `${proto}://${host}`;
}
