/**
 * The server's URL as a person gives it (--server, the client config's `server`), parsed once at the boundary. The
 * mistakes people make get a message that says the fix: a URL without its scheme (`127.0.0.1:8080`, which WHATWG
 * URL reads as an error or, for `backup:8080`, as the scheme "backup:"), a scheme other than http and https, or a
 * query or fragment, which no request would carry.
 */
import { ValidationError } from './errors.ts';

const SCHEME = /^[a-z][a-z0-9+.-]*:\/\//i;

/** An http:// or https:// URL with a host, as given (the callers build their URLs from it). */
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
  return value;
}
