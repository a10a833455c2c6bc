/**
 * How the client reaches the server: which CA certificates it trusts (--ca-file on top of Node's bundled roots) and
 * whether it tunnels through an HTTP CONNECT proxy (HTTPS_PROXY, NO_PROXY). The JSON API (fetch) and tus-js-client
 * (node:https) are two HTTP stacks; both are built here from one decision, so they can never disagree about the
 * route or the trust, and certificate failures become one clear, non-retryable error.
 */
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { isIP } from 'node:net';
import tls from 'node:tls';
import { Agent, ProxyAgent, fetch as undiciFetch, type Dispatcher } from 'undici';
import { HttpsProxyAgent } from 'https-proxy-agent';
import { DefaultHttpStack, type HttpStack } from 'tus-js-client';
import { SnapferryError, ValidationError } from '../../core/errors.ts';
import { stopBodyOnAnswer } from './stop-body-on-answer.ts';

/** The part of fetch the JSON API uses: the same shape from global fetch and from undici's. */
export type ApiFetch = (
  url: string,
  init: { method: string; headers: Record<string, string>; body?: string; signal?: AbortSignal },
) => Promise<{ ok: boolean; status: number; statusText: string; headers: { get(name: string): string | null }; text(): Promise<string> }>;

/**
 * How long a request may go without a byte moving either way and without an answer before the client drops the
 * connection and resumes on a new one (--stall-timeout). A line can go silent with no RST or FIN (a NAT that lost
 * its state, a DSL line's daily reconnect, a proxy that never answers): TCP itself would wait for many minutes, so
 * without this a push would hang for ever. Long enough for a healthy slow line: bodies report progress every
 * 64 KiB (client/upload/patch-body.ts), 0.5 s at 1 Mbit/s, and the server answers a PATCH as soon as its last frame is
 * synced.
 */
export const DEFAULT_STALL_MS = 30_000;

export interface TransportOptions {
  /** A PEM file of CA certificates to trust besides Node's bundled roots (a private CA, a test CA). */
  caFile?: string;
  /** Where HTTPS_PROXY and NO_PROXY are read (either case); default process.env. */
  env?: Record<string, string | undefined>;
}

export interface Transport {
  /** The CONNECT proxy in use, or null for a direct connection. */
  readonly proxy: URL | null;
  readonly fetch: ApiFetch;
  /** For tus-js-client's `httpStack` option. */
  readonly httpStack: HttpStack;
  /**
   * Drops every connection of both stacks, idle ones included, so the next request opens a new one. Called when a
   * request stalled: a line that went silent (a NAT that forgot its state, a DSL reconnect) killed every connection
   * open across it, not only the stalled one, and a request sent into another pooled one waited out a whole stall
   * timeout again (the bench's silent line: 30 s more lost).
   */
  dropConnections(): void;
  /** Drops pooled connections (idle ones never keep the process alive). */
  close(): Promise<void>;
}

/** The CA file could not be read or holds no certificate. Fix the flag; retrying cannot help. */
export class CaFileError extends ValidationError {}

/**
 * The server's certificate was refused. Not retryable: the next try meets the same certificate, so a retry loop
 * would spin for ever where a person has to act (pass --ca-file, renew, fix the name).
 */
export class CertificateError extends SnapferryError {}

/**
 * Builds the transport for one server. The proxy is chosen once, for the server's origin: upload URLs the server
 * hands out live on that same origin.
 */
export function createTransport(server: string | URL, options: TransportOptions = {}): Transport {
  const target = new URL(server);
  const proxy = proxyFor(target, options.env ?? process.env);
  const ca = options.caFile === undefined ? undefined : [...tls.rootCertificates, ...readCaFile(options.caFile)];
  // One TLS context for every connection of both stacks. Given `ca`, Node builds a context per connection, parsing
  // its ~140 bundled roots and the CA file again: about 20 ms of CPU each time, on each connection a push opens (three
  // or more, and one after every cut or refused PATCH). Given `secureContext`, the agents' pools still key on the
  // origin, and the handshake checks the certificate and its name just the same.
  const tlsOptions = ca === undefined ? {} : { secureContext: tls.createSecureContext({ ca }) };
  // Pools of our own, with nothing configured too, so that dropConnections() can empty them.
  const newDispatcher = (): Dispatcher => (proxy ? new ProxyAgent({ uri: proxy.toString(), requestTls: tlsOptions }) : new Agent({ connect: tlsOptions }));
  let dispatcher = newDispatcher();
  // https-proxy-agent opens the tunnel; the TLS inside it takes the secure context from the request options below.
  const agent = proxy
    ? new HttpsProxyAgent(proxy, { keepAlive: true })
    : target.protocol === 'https:'
      ? new https.Agent({ keepAlive: true, ...tlsOptions })
      : new http.Agent({ keepAlive: true });
  const fetch: ApiFetch = (url, init) => undiciFetch(url, { ...init, dispatcher });
  return {
    proxy,
    fetch,
    httpStack: stopBodyOnAnswer(new DefaultHttpStack({ agent, ...tlsOptions })),
    dropConnections: () => {
      // The agent stays usable: it only destroys the sockets it has. A dispatcher once destroyed is not, so a new one.
      agent.destroy();
      const old = dispatcher;
      dispatcher = newDispatcher();
      void old.destroy().catch(() => undefined);
    },
    close: async () => {
      agent.destroy();
      await dispatcher.close();
    },
  };
}

function readCaFile(file: string): string[] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new CaFileError(`cannot read --ca-file ${file}: ${(err as Error).message}`, { cause: err, details: { file } });
  }
  const pems = text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  if (pems.length === 0) {
    throw new CaFileError(`--ca-file ${file} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`, { details: { file } });
  }
  return pems;
}

/**
 * The proxy for `target`, from the environment as curl reads it: https_proxy/HTTPS_PROXY for https:// servers
 * (lower case first), unless no_proxy/NO_PROXY names the host. Plain http:// servers (tests, a LAN) always go
 * direct: a CONNECT proxy exists for the HTTPS that restricted networks let out.
 */
export function proxyFor(target: URL, env: Record<string, string | undefined>): URL | null {
  if (target.protocol !== 'https:') return null;
  const raw = env.https_proxy || env.HTTPS_PROXY;
  if (!raw) return null;
  if (bypassesProxy(target, env.no_proxy || env.NO_PROXY || '')) return null;
  let proxy: URL;
  try {
    // curl accepts a bare host:port; so do we.
    proxy = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(raw) ? raw : `http://${raw}`);
  } catch (err) {
    throw new ValidationError(`HTTPS_PROXY is not a URL: ${raw}`, { cause: err });
  }
  if (proxy.protocol !== 'http:') {
    throw new ValidationError(`HTTPS_PROXY must be an http:// proxy (CONNECT); ${proxy.protocol}// is not supported`, {
      details: { proxy: proxy.origin },
    });
  }
  return proxy;
}

/**
 * NO_PROXY as curl reads it: entries split by commas or spaces; `*` matches every host; `example.net`, `.example.net`
 * and `*.example.net` match that domain and its subdomains; an entry with `:port` matches that port only; IPv6 in
 * brackets. (No CIDR ranges: name the addresses.)
 */
export function bypassesProxy(target: URL, noProxy: string): boolean {
  const host = target.hostname.replace(/^\[|\]$/g, '').toLowerCase();
  const port = target.port || (target.protocol === 'https:' ? '443' : '80');
  for (const item of noProxy.split(/[\s,]+/)) {
    const entry = item.trim().toLowerCase();
    if (entry === '') continue;
    if (entry === '*') return true;
    const parsed = parseNoProxyEntry(entry);
    if (parsed === null || (parsed.port !== undefined && parsed.port !== port)) continue;
    const name = parsed.host.replace(/^\*?\./, '');
    if (host === name || host.endsWith(`.${name}`)) return true;
  }
  return false;
}

/** `host`, `host:port`, `[v6]:port`, or a bare IPv6 address (two colons or more: no port then). */
function parseNoProxyEntry(entry: string): { host: string; port?: string } | null {
  if (!entry.startsWith('[') && /:.*:/.test(entry)) return { host: entry };
  const m = /^(?:\[([^\]]+)\]|([^:]+))(?::(\d+))?$/.exec(entry);
  if (!m) return null;
  return { host: m[1] ?? m[2]!, ...(m[3] !== undefined ? { port: m[3] } : {}) };
}

/** OpenSSL's verdicts that mean "no trusted CA signed this": --ca-file is the fix. */
const UNTRUSTED = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'INVALID_CA',
]);

/** Verdicts on a certificate that is signed by a trusted CA but still wrong: the server's admin must act. */
const INVALID = new Set([
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'HOSTNAME_MISMATCH',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_REVOKED',
  'CERT_SIGNATURE_FAILURE',
  'CERT_CHAIN_TOO_LONG',
  'INVALID_PURPOSE',
]);

/**
 * TLS to a port that speaks plain HTTP: OpenSSL reads "HTTP/1.1 400" as a TLS record of a version it does not know.
 * Node names it ERR_SSL_WRONG_VERSION_NUMBER (fetch) or EPROTO with OpenSSL's text (node:https).
 */
function isPlainHttpPeer(code: string, message: string): boolean {
  return code === 'ERR_SSL_WRONG_VERSION_NUMBER' || (code === 'EPROTO' && /wrong version number/i.test(message));
}

/**
 * Whether `origin` (an http:// server that closed a request's connection without a byte of answer) speaks TLS on
 * that port. A server started with --tls-cert does just that to plain HTTP: it read as an unreachable server, which a
 * timer runs again for ever. Asked only after such a close, directly (a proxy would answer for itself): a TLS
 * handshake, whatever the certificate.
 */
export function speaksTls(origin: URL, timeoutMs = 3000): Promise<boolean> {
  const host = origin.hostname.replace(/^\[(.*)\]$/, '$1');
  return new Promise((resolve) => {
    const socket = tls.connect({ host, port: Number(origin.port || 80), rejectUnauthorized: false, timeout: timeoutMs, ...(isIP(host) ? {} : { servername: host }) });
    const done = (yes: boolean): void => {
      socket.destroy();
      resolve(yes);
    };
    socket.once('secureConnect', () => done(true));
    socket.once('error', () => done(false));
    socket.once('timeout', () => done(false));
  });
}

/** A failed request's error and its causes, outermost first: fetch wraps what undici and the socket said. */
function* causes(err: unknown): Generator<Error> {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 8; e = e.cause, depth++) yield e;
}

/** Whether a failed request's connection was closed by the server before any answer (undici's SocketError). */
export function closedBeforeAnswer(err: unknown): boolean {
  for (const e of causes(err)) if ((e as { code?: unknown }).code === 'UND_ERR_SOCKET') return true;
  return false;
}

/**
 * The error for a failed request whose cause chain holds a TLS failure that no retry can fix (a refused certificate,
 * https:// to a plain-HTTP port), or null when the failure was something else (a refused or cut connection stays
 * retryable).
 */
export function tlsErrorFrom(err: unknown, server?: string | URL): CertificateError | null {
  const where = server === undefined ? '' : ` (${new URL(server).host})`;
  for (const e of causes(err)) {
    const code = (e as { code?: unknown }).code;
    if (typeof code !== 'string') continue;
    const details = { tlsCode: code, reason: e.message, ...(server === undefined ? {} : { server: new URL(server).origin }) };
    if (isPlainHttpPeer(code, e.message)) {
      const host = server === undefined ? 'HOST:PORT' : new URL(server).host;
      return new CertificateError(
        'server_speaks_plain_http',
        `the server${where} speaks plain HTTP on that port, not HTTPS: use http://${host} (only on loopback or a trusted LAN), ` +
          'or put nginx in front of it for TLS (see nginx/snapferry.conf), or start serve with --tls-cert and --tls-key',
        { retryable: false, cause: err, details },
      );
    }
    if (UNTRUSTED.has(code)) {
      return new CertificateError(
        'certificate_untrusted',
        `the server's certificate is not trusted${where}: pass --ca-file with the CA certificate that signed it (${e.message})`,
        { retryable: false, cause: err, details },
      );
    }
    if (INVALID.has(code)) {
      return new CertificateError('certificate_invalid', `the server's certificate is not valid${where}: ${e.message}`, {
        retryable: false,
        cause: err,
        details,
      });
    }
  }
  return null;
}
