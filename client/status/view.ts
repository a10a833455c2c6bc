/**
 * `snapferry status` for people: the report of client/status/data.ts as tables that fit 100 columns. Long names
 * keep their end (a snapshot's timestamp is what tells two apart); long messages wrap.
 */
import { formatBytes } from '../progress/format.ts';
import { formatDuration } from '../progress/math.ts';
import { describeWait, lastWords } from '../push/receive-waiting.ts';
import type { OrphanStatus, StatusReport, TransferStatus, VolumeStatus } from './data.ts';

export const STATUS_WIDTH = 100;

/** `text` in `width` columns: cut from the front with an ellipsis when too long. */
export function fitEnd(text: string, width: number): string {
  return text.length <= width ? text : `…${text.slice(text.length - width + 1)}`;
}

const left = (text: string, width: number) => fitEnd(text, width).padEnd(width);
const right = (text: string, width: number) => fitEnd(text, width).padStart(width);

function ago(iso: string, now: number): string {
  const t = Date.parse(iso);
  return Number.isFinite(t) ? `${formatDuration(Math.max(0, now - t) / 1000)} ago` : '?';
}

/** Words of `text` in lines of at most `width` columns, each starting with `indent`. */
function wrap(text: string, width: number, indent: string): string[] {
  const lines: string[] = [];
  let line = indent;
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (line.length > indent.length && line.length + 1 + word.length > width) {
      lines.push(line);
      line = indent;
    }
    line += line.length > indent.length ? ` ${word}` : word;
  }
  if (line.length > indent.length) lines.push(line);
  return lines.map((l) => fitEnd(l, width));
}

export function renderStatus(report: StatusReport, now: number = Date.now()): string {
  const s = report.server;
  const free = s.freeBytes === null ? 'free space unknown' : `${formatBytes(s.freeBytes)} free`;
  const lines = [fitEnd(`server ${s.url}: snapferry ${s.version}, up ${formatDuration(s.uptimeSeconds)}, ${free}`, STATUS_WIDTH), ''];
  lines.push(...volumeTable(report.volumes, now), '');
  lines.push(...transferTable(report.inFlight, now));
  if (s.orphanedSpools.count > 0) lines.push('', ...orphanTable(s.orphanedSpools, report.orphaned, now));
  if (report.lastError) {
    const e = report.lastError;
    lines.push('', fitEnd(`LAST ERROR  ${ago(e.at, now)}  ${e.volume}/${e.snapshot}  (transfer ${e.transferId.slice(0, 8)}, ${e.state})`, STATUS_WIDTH));
    lines.push(...wrap(`${e.code}: ${e.message}`, STATUS_WIDTH, '  '));
  }
  return lines.join('\n');
}

function volumeTable(volumes: readonly VolumeStatus[], now: number): string[] {
  const withLocal = volumes.some((v) => v.local !== null);
  const head = `${left('VOLUME', 14)}  ${right('SNAPSHOTS', 9)}  ${left('NEWEST ON SERVER', 24)}  ${left('RECEIVED', 10)}`;
  const lines = [withLocal ? `${head}  ${left('NEWEST LOCAL', 24)}  ${right('UNSENT', 6)}` : head.trimEnd()];
  for (const v of volumes) {
    const name = v.client === undefined ? v.name : `${v.client}/${v.name}`;
    let row = `${left(name, 14)}  ${right(String(v.snapshots), 9)}  ${left(v.newest?.name ?? '-', 24)}  ${left(v.newest ? ago(v.newest.receivedAt, now) : '-', 10)}`;
    if (withLocal) {
      const l = v.local;
      const newest = l === null ? '' : 'error' in l ? '(cannot list)' : (l.newest ?? '(none)');
      const unsent = l === null || 'error' in l ? '' : String(l.notOnServer);
      row += `  ${left(newest, 24)}  ${right(unsent, 6)}`;
    }
    lines.push(row.trimEnd());
    if (v.local && 'error' in v.local) lines.push(...wrap(`${v.local.dir}: ${v.local.error}`, STATUS_WIDTH, '  '));
    if (v.altered.length > 0) {
      const which = v.altered.join(', ');
      lines.push(...wrap(`CHANGED BY HAND on the server (made writable or its Received UUID cleared), kept but never a parent: ${which}`, STATUS_WIDTH, '  '));
    }
  }
  if (volumes.length === 0) lines.push('(no volumes yet)');
  return lines;
}

function transferTable(transfers: readonly TransferStatus[], now: number): string[] {
  // STATE fits waiting_for_space, the longest state.
  const lines = [`${left('IN FLIGHT', 23)}  ${left('STATE', 17)}  ${right('RAW', 10)}  ${left('OF ESTIMATE', 12)}  ${right('%', 4)}  ${right('SENT', 10)}  ${right('FRAMES', 7)}`];
  for (const t of transfers) {
    const of = t.rawEstimate === null ? '' : `/ ~${formatBytes(t.rawEstimate)}`;
    const percent = t.percent === null ? '' : `${t.percent}%`;
    lines.push(
      `${left(`${t.volume}/${t.snapshot}`, 23)}  ${left(t.state, 17)}  ${right(formatBytes(t.rawBytes), 10)}  ${left(of, 12)}  ${right(percent, 4)}  ${right(formatBytes(t.wireBytes), 10)}  ${right(String(t.frames), 7)}`,
    );
    const detail = [`transfer ${t.id.slice(0, 8)}`, `started ${ago(t.createdAt, now)}`, `${formatBytes(t.rawReceived)} received`];
    // Whether anyone is sending it: an upload nobody sends waits for a push (of this snapshot, from its client).
    if (t.heldByPush !== null) detail.splice(1, 0, t.heldByPush ? 'being sent by a push now' : 'waiting for a push to resume it');
    // The column keeps the end of VOLUME/SNAPSHOT, the snapshot's time: a volume cut off is named here instead.
    if (`${t.volume}/${t.snapshot}`.length > 23) detail.splice(1, 0, `volume ${t.volume}`);
    if (t.interruptions > 0) detail.push(`interrupted ${t.interruptions} time${t.interruptions === 1 ? '' : 's'}`);
    const cut = t.lastInterruption === null ? null : /^(\S+?): (.*)$/.exec(t.lastInterruption);
    if (cut) detail.push(`last ${ago(cut[1]!, now)}: ${cut[2]}`);
    lines.push(...wrap(detail.join(', '), STATUS_WIDTH, '  '));
    if (t.wait !== null) {
      const why = t.error ? ` Last failure: ${t.error.code}: ${lastWords(t.error.message)}` : '';
      const state = t.state === 'receiving' ? 'receiving again after the server\'s own trouble' : describeWait(t.wait, now);
      lines.push(...wrap(`The whole stream is on the server, nothing is sent again; ${state}.${why}`, STATUS_WIDTH, '  '));
    }
  }
  if (transfers.length === 0) lines.push('(nothing in flight)');
  return lines;
}

/** Spools of transfers that are over: what they hold, and how they go. */
function orphanTable(total: { count: number; bytes: number }, orphans: readonly OrphanStatus[], now: number): string[] {
  const head = `SPOOLS OF ENDED TRANSFERS: ${total.count}, ${formatBytes(total.bytes)}: \`snapferry abort ID\` deletes one now, the server does after its expiry period`;
  const lines = wrap(head, STATUS_WIDTH, '');
  for (const o of orphans) {
    lines.push(fitEnd(`  ${left(`${o.volume}/${o.snapshot}`, 30)}  ${left(o.state, 8)}  ${left(ago(o.endedAt, now), 12)}  ${right(formatBytes(o.spoolBytes), 10)}  ${o.id.slice(0, 8)}`, STATUS_WIDTH));
  }
  return lines;
}
