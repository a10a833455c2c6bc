/**
 * What a push tells its user, as events; the CLI picks text for people or JSON lines for scripts (STYLE.md 12).
 */
import type { Transfer } from '../core/protocol.ts';

export interface ProgressFigures {
  wireBytes: number;
  rawBytes: number;
}

export interface Reporter {
  note(message: string): void;
  startTransfer(snapshot: string, parent: string | null): void;
  progress(figures: ProgressFigures): void;
  waiting(snapshot: string): void;
  received(snapshot: string, transfer: Transfer): void;
}

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v.toFixed(u === 0 ? 0 : 1)} ${units[u]}`;
}

/** Plain lines on stderr; progress at most every few seconds so logs of a cron job stay short. */
export function textReporter(write: (line: string) => void = (l) => process.stderr.write(`${l}\n`), everyMs = 5000): Reporter {
  let started = Date.now();
  let lastLine = 0;
  return {
    note: (m) => write(`note: ${m}`),
    startTransfer: (s, p) => {
      started = Date.now();
      lastLine = started;
      write(p ? `sending ${s} (incremental from ${p})` : `sending ${s} (full)`);
    },
    progress: ({ wireBytes, rawBytes }) => {
      const now = Date.now();
      if (now - lastLine < everyMs) return;
      lastLine = now;
      const secs = Math.max((now - started) / 1000, 0.001);
      write(`  ${formatBytes(rawBytes)} raw, ${formatBytes(wireBytes)} sent, ${formatBytes(wireBytes / secs)}/s`);
    },
    waiting: (s) => write(`  uploaded ${s}; waiting for the server to receive and check it`),
    received: (s, t) =>
      write(
        `received ${s}: ${formatBytes(t.rawBytes)} raw in ${formatBytes(t.wireOffset)} on the wire` +
          (t.interruptions > 0 ? `, resumed after ${t.interruptions} interruption(s)` : ''),
      ),
  };
}

export function jsonReporter(write: (line: string) => void = (l) => process.stdout.write(`${l}\n`)): Reporter {
  const emit = (event: string, data: Record<string, unknown>) => write(JSON.stringify({ event, at: new Date().toISOString(), ...data }));
  return {
    note: (message) => emit('note', { message }),
    startTransfer: (snapshot, parent) => emit('start', { snapshot, parent }),
    progress: (f) => emit('progress', { ...f }),
    waiting: (snapshot) => emit('uploaded', { snapshot }),
    received: (snapshot, transfer) => emit('received', { snapshot, transfer }),
  };
}
