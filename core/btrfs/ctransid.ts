/**
 * A subvolume's ctransid (the transaction of its last change), as `btrfs send` puts it in its first command:
 * btrfs-progs prints it nowhere else (`subvolume show` has the Generation, which a balance moves on without changing
 * a file; the ctransid moves only when something in the subvolume changes). The send commits what is pending first,
 * so the figure is the one on disk. Only the first command is read; the send is stopped there. The subvolume must be
 * read-only, as btrfs send requires.
 */
import { SendStreamCheck } from '../wire/sendstream-check.ts';
import { send } from './send.ts';
import type { RunOptions } from './run.ts';

export async function ctransidOf(subvolume: string, options: Pick<RunOptions, 'signal'> = {}): Promise<number> {
  const sent = send(subvolume, options.signal ? { signal: options.signal } : {});
  const check = new SendStreamCheck();
  sent.stream.on('error', (err) => check.destroy(err));
  check.on('error', () => undefined);
  sent.stream.pipe(check);
  try {
    return (await check.header).ctransid;
  } finally {
    check.destroy();
    sent.stream.destroy();
    await sent.done.catch(() => undefined);
  }
}
