import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PayloadShelf, SHELF_BYTES } from '../../core/wire/payload-shelf.mjs';
import { KiB, MiB } from './frame-helpers.ts';

describe('payload shelf', () => {
  it('makes a payload at the start of memory of its own, in steps that later payloads of about its size fit', () => {
    const shelf = new PayloadShelf();
    const p = shelf.take(1500 * KiB);
    assert.equal(p.length, 1500 * KiB);
    assert.equal(p.byteOffset, 0);
    assert.equal(p.buffer.byteLength, 1536 * KiB);
    assert.equal(shelf.fresh, 1);
  });

  it('copies into the smallest piece kept that fits, and makes none new', () => {
    const shelf = new PayloadShelf();
    const pieces = [3 * MiB, 1 * MiB, 2 * MiB].map((n) => shelf.take(n).buffer as ArrayBuffer);
    for (const memory of pieces) shelf.put(memory);
    const p = shelf.take(900 * KiB);
    assert.equal(p.buffer, pieces[1]);
    assert.equal(shelf.take(1500 * KiB).buffer, pieces[2]);
    assert.equal(shelf.fresh, 3);
  });

  it('lets go of the smallest piece when none fits: the payloads have grown past it', () => {
    const shelf = new PayloadShelf();
    const small = shelf.take(1 * MiB).buffer as ArrayBuffer;
    const middle = shelf.take(2 * MiB).buffer as ArrayBuffer;
    shelf.put(small);
    shelf.put(middle);
    shelf.take(3 * MiB);
    assert.equal(shelf.fresh, 3);
    assert.equal(shelf.take(1 * MiB).buffer, middle, 'the small piece is gone; the middle one serves');
    shelf.take(1 * MiB);
    assert.equal(shelf.fresh, 4);
  });

  it(`keeps at most ${SHELF_BYTES / MiB} MiB`, () => {
    const shelf = new PayloadShelf();
    const pieces = Array.from({ length: SHELF_BYTES / (4 * MiB) + 1 }, () => shelf.take(4 * MiB).buffer as ArrayBuffer);
    for (const memory of pieces) shelf.put(memory);
    for (let i = 0; i < pieces.length - 1; i++) assert.equal(shelf.take(4 * MiB).buffer, pieces[i]);
    const before = shelf.fresh;
    shelf.take(4 * MiB);
    assert.equal(shelf.fresh, before + 1, 'the piece over the bound was not kept');
  });
});
