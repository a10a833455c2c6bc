/**
 * The bench's command line: `npm run bench [-- --quick] [--json FILE] [--only lan,rss,onecore,slow,silent,hash,digest,archive]`, and the sizes
 * each mode uses. --quick (or SNAPFERRY_BENCH_QUICK=1) is a small run for working on the bench itself: its figures
 * are dominated by fixed costs and say little.
 */
import { parseArgs } from 'node:util';

export const SECTIONS = ['lan', 'rss', 'onecore', 'slow', 'silent', 'hash', 'digest', 'archive'] as const;
export type Section = (typeof SECTIONS)[number];

export interface Scale {
  /** File data of the main subvolume (its full send is the LAN stream and the large RSS stream). */
  dataMiB: number;
  /** File data of the small RSS stream: a quarter of the main one. */
  quarterMiB: number;
  /** File data of the slow-link subvolume, sized so that each variant takes 2-3 minutes at the link's rate. */
  slowMiB: number;
  /** The slow link: 2 Mbit/s. */
  linkBytesPerSecond: number;
  /**
   * A cut every 30 s of link time, in upstream bytes (deterministic, unlike a timer, and the same for both
   * variants). It must stay well above a frame's wire size: a link cut before any frame gets across never delivers one.
   */
  cutEveryBytes: number;
  /** File data of the silent-line subvolume: small, for the shaped line carries 250 kB/s and each silence adds its own length. */
  silentMiB: number;
  /** The silences of the silent-line section, one push each. */
  silences: readonly SilenceSpec[];
  clientImageMiB: number;
  serverImageMiB: number;
  /**
   * The stream the archive rows push (archive.ts): the full one with --quick; a quarter of it otherwise, because the
   * test RGW's OSD keeps the bucket in memory (2 GiB) and the stream is stored once per run.
   */
  archiveStream: 'full' | 'quarter';
  /** Runs of each archive row, in alternating order; the fastest is kept (archive.ts). */
  archiveRounds: number;
}

/** One silence of the shaped line during a push. */
export interface SilenceSpec {
  seconds: number;
  /** The line also forgets the connections open when it falls silent, as a NAT that lost its state. */
  forget: boolean;
}

export interface BenchOptions {
  quick: boolean;
  json: string | null;
  only: ReadonlySet<Section>;
  scale: Scale;
}

const LINK = 2_000_000 / 8;

const FULL: Scale = {
  dataMiB: 1024,
  quarterMiB: 256,
  slowMiB: 44,
  linkBytesPerSecond: LINK,
  cutEveryBytes: 30 * LINK,
  silentMiB: 4,
  // Shorter than the stall timeout, TCP alone might carry the connection on, and the push waits for the stall
  // timeout all the same when the line forgot it; longer, only a new connection can go on.
  silences: [
    { seconds: 10, forget: true },
    { seconds: 20, forget: false },
    { seconds: 20, forget: true },
    { seconds: 60, forget: true },
  ],
  clientImageMiB: 4096,
  // Room for one received full stream, its spool beside it, and the incremental; deletes are waited for between runs.
  serverImageMiB: 6144,
  archiveStream: 'quarter',
  archiveRounds: 2,
};

const QUICK: Scale = {
  dataMiB: 64,
  quarterMiB: 16,
  slowMiB: 12,
  linkBytesPerSecond: LINK,
  cutEveryBytes: 30 * LINK,
  silentMiB: 2,
  silences: [{ seconds: 10, forget: true }],
  clientImageMiB: 1024,
  serverImageMiB: 1024,
  archiveStream: 'full',
  archiveRounds: 2,
};

export const USAGE = `usage: npm run bench -- [--quick] [--json FILE] [--only ${SECTIONS.join(',')}]
  --quick      a small run (64 MiB, a few seconds per row) for working on the bench; also SNAPFERRY_BENCH_QUICK=1
  --json FILE  also write every figure as JSON to FILE
  --only LIST  run only these sections (comma-separated); the default is all of them
SNAPFERRY_BENCH_LOGS=DIR keeps what every snapferry process printed (DIR/N-serve.log, DIR/N-push.log)`;

export function parseBenchArgs(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): BenchOptions | 'help' {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      quick: { type: 'boolean', default: false },
      json: { type: 'string' },
      only: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) return 'help';
  const quick = values.quick || env.SNAPFERRY_BENCH_QUICK === '1';
  const only = new Set<Section>();
  for (const name of (values.only ?? SECTIONS.join(',')).split(',').filter((s) => s.length > 0)) {
    if (!(SECTIONS as readonly string[]).includes(name)) throw new Error(`--only: unknown section ${name}; known: ${SECTIONS.join(', ')}`);
    only.add(name as Section);
  }
  return { quick, json: values.json ?? null, only, scale: quick ? QUICK : FULL };
}
