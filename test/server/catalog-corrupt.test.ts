/**
 * A catalog that is not JSON (cut short by a disk that lost its tail, garbled by an edit) is refused with the same
 * catalog_corrupt message as one whose records are wrong: it names the file and says to restore it or move it away
 * to rebuild it. Before, JSON.parse's own error came out alone ("Unterminated string in JSON at position 681").
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { SnapferryError } from '../../core/errors.ts';
import { Catalog } from '../../server/catalog.ts';

test('a truncated catalog is catalog_corrupt, naming the file and how to rebuild it', async (t) => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'snapferry-catalog-corrupt-'));
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'catalog.json');
  const whole = JSON.stringify({ version: 1, transfers: [], snapshots: [{ name: 's1', uuid: 'x'.repeat(36) }], removed: [] }, null, 1);
  await fs.writeFile(file, whole.slice(0, whole.indexOf('x') + 5));
  await assert.rejects(Catalog.open(file), (err: unknown) => {
    assert.ok(err instanceof SnapferryError, String(err));
    assert.equal(err.code, 'catalog_corrupt');
    assert.ok(err.message.includes(file), err.message);
    assert.match(err.message, /not JSON: .*Unterminated string/);
    assert.match(err.message, /move it away to rebuild it from the subvolumes on disk/);
    return true;
  });
});

test('a catalog record that does not parse is catalog_corrupt naming where in the file, so that it can be mended by hand', async (t) => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'snapferry-catalog-corrupt-'));
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'catalog.json');
  // A snapshot record without its volume, as an edit by hand could leave it.
  await fs.writeFile(file, JSON.stringify({ version: 1, transfers: [], snapshots: [{ name: 's1' }], removed: [] }));
  await assert.rejects(Catalog.open(file), (err: unknown) => {
    assert.ok(err instanceof SnapferryError, String(err));
    assert.equal(err.code, 'catalog_corrupt');
    assert.ok(err.message.includes(file), err.message);
    assert.match(err.message, /at snapshots\.0\.\w+: /);
    return true;
  });
});
