/**
 * Peak RSS of `snapferry push` and `snapferry serve` (each a process of its own, read by probe.mjs) for a small
 * stream and one four times larger, pushed straight to the server: memory must not grow with the stream. The large
 * one is the LAN section's full push when that section ran.
 */
import path from 'node:path';
import { pushOnce, type LanContext, type SnapferryFigures } from './lan.ts';
import { removeServerRoot } from './snapferry.ts';
import { settle, type Stream } from './world.ts';

export interface RssFigures {
  rawBytes: number;
  clientMaxRssBytes: number;
  serverMaxRssBytes: number;
}

export interface RssResult {
  small: RssFigures;
  large: RssFigures;
}

export async function runRss(ctx: LanContext, largeFromLan: SnapferryFigures | null): Promise<RssResult> {
  ctx.say('RSS: snapferry push of the small stream');
  const small = figures(ctx.world.quarter, await pushAlone(ctx, ctx.world.quarter, 'rss-small'));
  if (largeFromLan === null) ctx.say('RSS: snapferry push of the large stream');
  const large = figures(ctx.world.full, largeFromLan ?? (await pushAlone(ctx, ctx.world.full, 'rss-large')));
  return { small, large };
}

async function pushAlone(ctx: LanContext, stream: Stream, name: string): Promise<SnapferryFigures> {
  const root = path.join(ctx.world.server.mountPoint, `root-${name}`);
  await settle(ctx.world.server);
  try {
    return await pushOnce(ctx, { root, route: {}, stream });
  } finally {
    await removeServerRoot(root);
    await settle(ctx.world.server);
  }
}

function figures(stream: Stream, run: SnapferryFigures): RssFigures {
  return { rawBytes: stream.rawBytes, clientMaxRssBytes: run.clientMaxRssBytes, serverMaxRssBytes: run.serverMaxRssBytes };
}
