/**
 * What an HTTP answer without a snapferry error body means, said once for both of the client's HTTP stacks (the
 * JSON API in client/http/api.ts, tus uploads in client/upload/tus.ts). Such an answer comes from something in front of
 * the server or in its place: a reverse proxy whose upstream is down (its HTML error page is never worth printing),
 * nginx's "plain HTTP request was sent to HTTPS port", a web server on the wrong port, or @tus/server's bare status.
 */
export interface AnswerMeaning {
  code: string;
  message: string;
  retryable: boolean;
}

/** nginx's 400 page for http:// to its TLS port (its text is the same in every nginx version since 0.7). */
const PLAIN_HTTP_TO_TLS = /plain HTTP request was sent to HTTPS port/i;

/**
 * The meaning of `status` (with `body`, read only to recognise it, never shown) from `origin`. `what` names the
 * request for the fallback message (e.g. "GET https://…/v1/status").
 */
export function answerWithoutErrorBody(status: number, body: string, origin: string, what: string): AnswerMeaning {
  if (status === 502 || status === 503 || status === 504) {
    return {
      code: 'upstream_down',
      message: `the proxy in front of ${origin} answered ${status}: the snapferry server behind it is down or not answering (start it, or check the proxy's upstream address); trying again later helps once it runs`,
      retryable: true,
    };
  }
  if (status === 400 && PLAIN_HTTP_TO_TLS.test(body)) {
    return {
      code: 'wrong_scheme',
      message: `${origin} speaks HTTPS, not plain HTTP: give --server as https://${new URL(origin).host}`,
      retryable: false,
    };
  }
  if (status === 409) {
    return {
      code: 'upload_busy',
      message: 'the server refused this request on the upload for now (409): another push holds this upload, or a request from before a cut is still being finished; waiting',
      retryable: true,
    };
  }
  if (status === 429) {
    // RFC 6585: a proxy's rate limit (nginx's per-address cap) heals by waiting.
    // It says no more: the loop that retries it says how long it waits (a one-shot command that said "waiting" and exited
    // was wrong).
    return { code: 'http_error', message: `${origin} (or a proxy in front of it) asks to slow down (429): too many requests or connections at once`, retryable: true };
  }
  return {
    code: 'http_error',
    message: `${what} answered ${status} without a snapferry error: is --server the address of a snapferry server (check host, port and any path prefix)?`,
    retryable: status >= 500,
  };
}
