/**
 * The server's URL as a person gives it (--server, the client config's `server`), parsed once at the boundary. The
 * mistakes people make get a message that says the fix: a URL without its scheme (`127.0.0.1:8080`, which WHATWG
 * URL reads as an error or, for `backup:8080`, as the scheme "backup:"), a scheme other than http and https, or a
 * query or fragment, which no request would carry.
 */
import { ValidationError } from './errors.ts';

const SCHEME = /^[a-z][a-z0-9+.-]*:\/\//i;

/** An http:// or https:// URL with a host, without credentials, its path without empty segments or a trailing slash. */
export function parseServerUrl(value: string): string {
  if (!SCHEME.test(value)) {
    throw new ValidationError(
      `the server ${JSON.stringify(value)} has no scheme: give the URL with its scheme, e.g. https://${value.replace(/^\/+/, '') || 'backup.example.net'} ` +
        '(http:// only on loopback or a trusted LAN)',
      { details: { server: value } },
    );
  }
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ValidationError(`the server ${JSON.stringify(value)} is not a URL: expected one like https://backup.example.net or https://example.net:8443/snapferry`, {
      details: { server: value },
    });
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new ValidationError(`the server ${JSON.stringify(value)} has the scheme ${url.protocol.slice(0, -1)}: give an https:// (or http://) URL`, {
      details: { server: value },
    });
  }
  if (url.hostname === '') throw new ValidationError(`the server ${JSON.stringify(value)} names no host`, { details: { server: value } });
  // Requests are built by appending paths to the URL, which drops a query or fragment: refused, not lost in silence.
  if (/[?#]/.test(value)) {
    throw new ValidationError(
      `the server ${JSON.stringify(value)} has a ${value.includes('?') ? 'query (?...)' : 'fragment (#...)'}, which snapferry cannot send: every request's path is built on the URL and would drop it; give the URL without it, e.g. ${JSON.stringify(value.replace(/[?#].*$/s, ''))}`,
      { details: { server: value } },
    );
  }
  // user:pass@ is no way to authenticate to snapferry (the token is), and the fetch would refuse such a URL or send the
  // password on every request: refused with the way that works, not tried and called unreachable.
  if (url.username !== '' || url.password !== '') {
    throw new ValidationError(
      `the server ${JSON.stringify(url.host)} is given with credentials (user:password@), which snapferry does not use: give the URL without them, e.g. ${JSON.stringify(`${url.protocol}//${url.host}${url.pathname === '/' ? '' : url.pathname}`)}, and the client's token with --token-file`,
      { details: { server: `${url.protocol}//${url.host}` } },
    );
  }
  // The API's paths are joined below the URL's own path: https://host// would make //v1/status, which no server
  // routes. Empty segments and a trailing slash are dropped.
  const path = url.pathname.split('/').filter((segment) => segment !== '').join('/');
  return `${url.origin}${path === '' ? '' : `/${path}`}`;
}
