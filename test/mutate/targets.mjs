/**
 * What `npm run mutate` mutates, and which unit tests must notice: one entry per target, so each gets its own
 * score. Only fast, rootless unit tests are listed: Stryker runs the whole list once per mutant.
 *
 * `testsFor` (optional) narrows the tests per mutated file (names under test/wire/): a mutant runs only the tests of
 * the file it is in. That can only miss kills, never invent them, so it lowers a score if anything.
 *
 * `bundle` (optional): the tests run from esbuild bundles built once per run (test/mutate/bundle-tests.mjs), not
 * through tsx: four times quicker to start. Not for tests whose code starts workers from files beside its modules.
 *
 * `break` is the score below which the run fails (Stryker's thresholds.break). The survivors each target still has,
 * and why each cannot be killed, are listed in test/mutate/README.md.
 */
export const TARGETS = {
  /** The snapferry frame layer: format, parser, decoder, encoder, chain, codec, chunking. */
  frame: {
    mutate: [
      'core/wire/frame.ts',
      'core/wire/frame-parser.ts',
      'core/wire/frame-parser-state.ts',
      'core/wire/frame-sequence.ts',
      'core/wire/frame-decoder.ts',
      'core/wire/frame-encoder.ts',
      'core/wire/encoder-start.ts',
      'core/wire/frame-error.ts',
      'core/wire/chain.ts',
      'core/wire/codec.ts',
      'core/wire/raw-chunker.ts',
      'core/wire/raw-prefix.ts',
      'core/wire/byte-queue.ts',
      'core/wire/frame-seal.ts',
    ],
    tests: [
      'test/wire/byte-queue.test.ts',
      'test/wire/chain.test.ts',
      'test/wire/codec.test.ts',
      'test/wire/compression-pool.test.ts',
      'test/wire/frame-header.test.ts',
      'test/wire/frame-memory.test.ts',
      'test/wire/frame-parser.test.ts',
      'test/wire/frame-parser-rules.test.ts',
      'test/wire/frame-encoder-rules.test.ts',
      'test/wire/frame-resume.test.ts',
      'test/wire/frame-roundtrip.test.ts',
      'test/wire/native-codec.test.ts',
      'test/wire/frame-seal.test.ts',
    ],
    // The whole list takes ~5 s of CPU, for 900-odd mutants: each mutant runs only the tests of the code it is in,
    // fast ones first (a mutant stops at its first failing test). frame-memory (200 MiB, 1.7 s) only for ByteQueue.
    testsFor: {
      'core/wire/byte-queue.ts': ['byte-queue', 'frame-parser', 'frame-memory'],
      'core/wire/chain.ts': ['chain', 'frame-header', 'frame-resume'],
      'core/wire/codec.ts': ['codec', 'native-codec', 'frame-header'],
      'core/wire/frame.ts': ['frame-header', 'frame-resume', 'frame-parser-rules', 'frame-parser', 'frame-seal'],
      'core/wire/frame-error.ts': ['frame-header', 'frame-parser-rules'],
      'core/wire/frame-parser.ts': ['frame-parser-rules', 'frame-resume', 'frame-parser', 'frame-decode-errors', 'frame-seal'],
      'core/wire/frame-parser-state.ts': ['frame-parser-rules', 'frame-resume', 'frame-parser', 'frame-decode-errors'],
      'core/wire/frame-sequence.ts': ['frame-parser-rules', 'frame-resume', 'frame-parser', 'frame-decode-errors'],
      'core/wire/frame-decoder.ts': ['frame-parser-rules', 'frame-roundtrip', 'frame-parser', 'frame-memory', 'frame-seal'],
      'core/wire/frame-encoder.ts': ['frame-encoder-rules', 'frame-roundtrip', 'frame-resume', 'compression-pool', 'frame-encoder-errors', 'frame-encoder-flow', 'frame-seal'],
      'core/wire/encoder-start.ts': ['frame-encoder-rules', 'frame-roundtrip', 'frame-resume', 'frame-encoder-errors'],
      'core/wire/raw-chunker.ts': ['frame-encoder-rules', 'frame-roundtrip', 'frame-resume'],
      'core/wire/raw-prefix.ts': ['frame-resume', 'raw-prefix-rules', 'frame-seal'],
      'core/wire/frame-seal.ts': ['frame-seal'],
    },
    break: 95,
  },
  /** What a receiver allows a btrfs send stream to do (the rules of SendStreamPolicyCheck). */
  policy: {
    bundle: true,
    mutate: ['core/wire/sendstream-policy.ts', 'core/wire/sendstream-paths.ts', 'core/wire/sendstream-encoded-write.ts'],
    tests: ['test/core/sendstream-policy.test.ts', 'test/wire/sendstream-policy-rules.test.ts', 'test/wire/sendstream-policy-exact.test.ts', 'test/wire/sendstream-symlinks.test.ts'],
    break: 95,
  },
  /** The policy's tree of symlinks: no path of a stream reaches through one (btrfs receive --chroot is the folder). */
  symlinks: {
    mutate: ['core/wire/sendstream-symlinks.ts'],
    tests: ['test/wire/sendstream-symlinks.test.ts'],
    break: 90,
  },
  /** The send-stream UUID rewrite that puts each client's UUIDs in its own namespace before btrfs receive. */
  uuids: {
    mutate: ['core/wire/sendstream-uuids.ts'],
    tests: ['test/wire/sendstream-uuids.test.ts'],
    break: 90,
  },
  /** The planner: local snapshots and the server's catalog -> what to send from which parent. */
  plan: {
    mutate: ['core/plan.ts'],
    tests: ['test/core/plan.test.ts'],
    break: 90,
  },
  /** Which snapshots a retention policy keeps. */
  retention: {
    mutate: ['core/retention.ts', 'core/retention-policy.ts'],
    tests: ['test/core/retention.test.ts'],
    break: 90,
  },
};

/** Where bundle-tests.mjs writes the bundle of test file `file` (beside it, so its import.meta.dirname holds). */
export const bundleOf = (file) => file.replace(/\.ts$/, '.bundle.mjs');
