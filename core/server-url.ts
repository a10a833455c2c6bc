/**
 * The server's URL as a person gives it (--server, the client config's `server`), parsed once at the boundary. The
 * mistakes people make get a message that says the fix: a URL without its scheme (`127.0.0.1:8080`, which WHATWG
 * URL reads as an error or, for `backup:8080`, as the scheme "backup:"), a scheme other than http and https, a
 * query or fragment, which no request would carry, or a port the client's HTTP library never connects to.
 */
import { ValidationError } from './errors.ts';

const SCHEME = /^[a-z][a-z0-9+.-]*:\/\//i;

/**
 * The Fetch standard's "bad ports" (https://fetch.spec.whatwg.org/#port-blocking): "A request has a bad port if its
 * URL's scheme is an HTTP(S) scheme and its URL's port is a bad port." The client's HTTP library, undici's fetch,
 * refuses every request to them (as browsers do), so a server there can never be reached: told as "bad port; trying
 * again", push retried until exit 75 as if the server were down. A test holds this list equal to undici's.
 */
export const FETCH_BAD_PORTS: ReadonlySet<string> = new Set([
  '1', '7', '9', '11', '13', '15', '17', '19', '20', '21', '22', '23', '25', '37', '42', '43', '53', '69', '77', '79',
  '87', '95', '101', '102', '103', '104', '109', '110', '111', '113', '115', '117', '119', '123', '135', '137',
  '139', '143', '161', '179', '389', '427', '465', '512', '513', '514', '515', '526', '530', '531', '532',
  '540', '548', '554', '556', '563', '587', '601', '636', '989', '990', '993', '995', '1719', '1720', '1723',
  '2049', '3659', '4045', '4190', '5060', '5061', '6000', '6566', '6665', '6666', '6667', '6668', '6669', '6679',
  '6697', '10080',
]);

/**
 * The snapferry server's URL, which the client's HTTP library fetches: parseHttpUrl's form, on a port fetch does not
 * block. (An archive server's S3 endpoint is reached by the AWS SDK over node:http, which blocks none: parseHttpUrl.)
 */
export function parseServerUrl(value: string): string {
  const parsed = parseHttpUrl(value);
  const url = new URL(parsed);
  // url.port is '' for the scheme's own port (80, 443), which is never a bad one.
  if (FETCH_BAD_PORTS.has(url.port)) {
    throw new ValidationError(
      `the server ${JSON.stringify(url.host)} is on port ${url.port}, which the client's HTTP library (fetch) blocks, as browsers do ` +
        `(the Fetch standard's "bad ports": no request can reach a server there): use another port, e.g. 8443, for the server or a proxy in front of it`,
      { details: { server: `${url.protocol}//${url.host}`, port: Number(url.port) } },
    );
  }
  return parsed;
}

/** An http:// or https:// URL with a host, without credentials, its path without empty segments or a trailing slash. */
export function parseHttpUrl(value: string): string {
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
