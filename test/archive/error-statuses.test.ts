/**
 * Every refusal the archive's modules can throw has a status chosen for it in server/http-errors.ts. On the upload
 * path a code the table does not know is taken for the client's mistake (400, not retried): a server fault such as a
 * corrupt object in the bucket must never reach a client as "your upload is wrong". The codes are read from the
 * sources, so a new one cannot slip past.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { SnapferryError } from '../../core/errors.ts';
import { uploadStatusOf } from '../../server/http-errors.ts';

const ARCHIVE = path.resolve(import.meta.dirname, '../../server/archive');
/** Codes that are the client's to fix, so 4xx below 409 is right for them. */
const CLIENT_MISTAKES = new Set(['length_mismatch', 'not_found', 'offset_mismatch']);

function codesThrown(): Set<string> {
  const codes = new Set<string>();
  for (const file of readdirSync(ARCHIVE).filter((f) => f.endsWith('.ts'))) {
    const text = readFileSync(path.join(ARCHIVE, file), 'utf8');
    for (const m of text.matchAll(/new [A-Za-z]*Error\(\s*'([a-z_]+)'/g)) codes.add(m[1]!);
  }
  return codes;
}

test('every code server/archive/ throws has a status of its own, and no server fault reads as the client\'s mistake', () => {
  const codes = codesThrown();
  assert.ok(codes.size >= 8, `found only ${[...codes].join(', ')}: has the pattern stopped matching?`);
  for (const code of codes) {
    const status = uploadStatusOf(new SnapferryError(code, 'x'));
    if (CLIENT_MISTAKES.has(code)) assert.ok(status >= 400 && status < 500, `${code}: ${status}`);
    else assert.notEqual(status, 400, `${code} answers 400 on the upload path, as if the client sent something wrong`);
  }
  for (const code of ['store_unavailable', 'store_forbidden', 'store_bucket_missing', 'lease_lost']) {
    assert.notEqual(uploadStatusOf(new SnapferryError(code, 'x', { retryable: true })), 400, code);
  }
});
